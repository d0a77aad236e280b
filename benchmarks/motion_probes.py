"""Understanding and anticipation, V-JEPA 2's first two abilities, on clips of the simulated arm.

V-JEPA 2 shows what its encoder understands with attentive probes on frozen features: action recognition
on Something-Something v2 (which motion, not which object: the appearance alone does not tell) and action
anticipation on EPIC-KITCHENS (from a clip, the action that comes next, class-mean recall@k). The same two
probes, on clips of the arm worlds:

- a clip is 4 consecutive frames (the stage-1 clip length) of held-out episodes of the preset's env and
  collection policy mix (noisy scripted expert / held random actions, made here from the test seeds);
- its motion class is what the arm did between its first and last frame, from the simulator's state:
  the fingers closed or opened (>= 1.5 cm); or, the fingers still, the grasp point moved along -x / +x /
  -y / +y / down / up (>= 1.5 cm, 1.5x more than along any other axis); or stayed still (< 0.5 cm):
  9 classes, and clips of no clear class left out;
- recognition: a clip's own motion; anticipation: the next different motion (of the window that starts at
  the clip's last frame), from clips whose next motion differs from their own;
- two probes read every token of the clip: linear (ridge regression to the one-hot class, penalty chosen
  on training episodes left out) and attentive (V-JEPA's cross-attention probe, `worldjepa.eval.frozen`,
  on the tokens standardised at each place, with a code of the place: `state_probes.attentive_input`);
  the video encoder encodes the clip as one video (V-JEPA's frozen evaluation); the pixel baseline is
  each frame's raw patches side by side;
- encoders: the stage-1 run's (pretrained), a random-init encoder of the same shape, raw pixel patches.

Reports class-mean top-1 accuracy (recognition, anticipation) and class-mean recall@3 (anticipation, as
EPIC-KITCHENS' recall@5 over its many classes), on episodes split 2:1 into probe training and test.

    python benchmarks/motion_probes.py -c wm_arm_pickplace --encoder runs/pnp20/encoder --episodes 150

Prints a markdown table and writes every number to `--out`/motion_probes.json.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from state_probes import (  # benchmarks/ is on sys.path as a script
    attentive_input,
    attentive_protocol,
    encoders,
    held_out_episodes,
    linear_probes,
    probe_arguments,
    write_results,
)
from worldjepa.eval.frozen import FeatureSet, train_probe
from worldjepa.nn.frame_encoder import FrameEncoder
from worldjepa.presets import WorldModelPreset, load_config

CLASSES = ("close", "open", "-x", "+x", "-y", "+y", "down", "up", "still")
CLIP = 4  # frames per clip, the stage-1 clip length
MOVE_CM = 1.5  # smallest move (grasp point or finger opening) that counts as a motion
STILL_CM = 0.5  # largest move of a still arm
DOMINANT = 1.5  # a direction class moves at least this many times more along its axis than along any other


def motion_classes(states: np.ndarray, start: np.ndarray, span: int) -> np.ndarray:
    """The motion class (index into CLASSES) of frames start -> start + span from arm states [T, S]; -1
    where the motion is none of them clearly (a diagonal move, a small one, a half-closed hand)."""
    move = (states[start + span, :3] - states[start, :3]) * 100
    grip = (states[start + span, 6] - states[start, 6]) * 100
    size = np.abs(move)
    axis = size.argmax(1)
    ordered = np.sort(size, 1)
    clear = (
        (ordered[:, 2] >= MOVE_CM) & (ordered[:, 2] >= DOMINANT * ordered[:, 1]) & (np.abs(grip) < STILL_CM)
    )
    direction = np.where(clear, 2 + 2 * axis + (move[np.arange(len(start)), axis] > 0), -1)
    still = np.where((ordered[:, 2] < STILL_CM) & (np.abs(grip) < STILL_CM), 8, direction)
    return np.where(grip <= -MOVE_CM, 0, np.where(grip >= MOVE_CM, 1, still))


def make_clips(episodes: list[dict], stride: int = 2) -> dict[str, np.ndarray]:
    """Clips (frame indices [M, CLIP] into the episodes' frames, concatenated), their episode, their own
    motion class and the class of the next different motion (-1: no clear class, or the next window moves
    the same way, or runs past the episode)."""
    starts, owner, own, upcoming, offset = [], [], [], [], 0
    span = CLIP - 1
    for i, episode in enumerate(episodes):
        states = episode["states"]
        first = np.arange(0, len(states) - span, stride)
        current = motion_classes(states, first, span)
        has_next = first + 2 * span < len(states)
        after = np.full(len(first), -1)
        after[has_next] = motion_classes(states, first[has_next] + span, span)
        after[(after == current) | (current < 0)] = -1
        starts.append(offset + first)
        owner.append(np.full(len(first), i))
        own.append(current)
        upcoming.append(after)
        offset += len(states)
    first = np.concatenate(starts)
    return {
        "frames": first[:, None] + np.arange(CLIP),
        "episode": np.concatenate(owner),
        "recognition": np.concatenate(own),
        "anticipation": np.concatenate(upcoming),
    }


@torch.no_grad()
def clip_tokens(
    encoder: torch.nn.Module, frames: np.ndarray, clips: np.ndarray, batch: int = 128
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Every token of each clip, layer-normed, and the tokens' (t, h, w) grid: a video encoder encodes the
    clip as one video, an image encoder (raw pixel patches) each frame, side by side. frames uint8
    [F, H, W, 3], clips [M, CLIP]."""
    view = FrameEncoder(encoder)  # only its input transform: crop, resize, normalise
    video = encoder.grid[0] > 1
    out = []
    for i in range(0, len(clips), batch):
        pixels = torch.from_numpy(frames[clips[i : i + batch].reshape(-1)])
        x = view.pixels_to_input(pixels).unflatten(0, (-1, CLIP))  # [B, CLIP, 3, h, w]
        tokens = encoder(x.transpose(1, 2)) if video else encoder(x.flatten(0, 1)).unflatten(0, (-1, CLIP))
        out.append(F.layer_norm(tokens.flatten(1, -2).float(), tokens.shape[-1:]))
    return torch.cat(out), encoder.grid if video else (CLIP, *encoder.grid[1:])


def class_mean_recall(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Recall@k averaged over the classes present in `labels` (EPIC-KITCHENS' anticipation measure)."""
    hit = (logits.topk(k, dim=1).indices == labels[:, None]).any(1).float()
    return torch.stack([hit[labels == c].mean() for c in labels.unique()]).mean().item()


def top1_loss(scores: torch.Tensor, onehot: torch.Tensor) -> float:
    """The linear probe's penalty is chosen for the highest class-mean top-1."""
    return -class_mean_recall(scores, onehot.argmax(1), 1)


def main() -> None:
    parser = probe_arguments(__doc__.splitlines()[0], "wm_arm_pickplace", 150, "runs/bench/motion_probes")
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides, WorldModelPreset)
    if not cfg.env.id.startswith("worldjepa/Arm"):
        parser.error(f"motion classes are defined for the arm worlds, not {cfg.env.id}")
    tic = time.perf_counter()
    episodes = held_out_episodes(cfg, args.encoder, args.episodes)
    frames = np.concatenate([e["frames"] for e in episodes])
    clips = make_clips(episodes)
    episode = torch.from_numpy(clips["episode"])
    test_episode = episode % 3 == 2
    print(
        f"{len(episodes)} episodes, {len(clips['frames'])} clips of {cfg.env.id} in {time.perf_counter() - tic:.0f} s"
    )
    tasks = {}
    for task in ("recognition", "anticipation"):
        labels = torch.from_numpy(clips[task])
        keep = labels >= 0
        tasks[task] = {
            "labels": labels,
            "train": torch.nonzero(keep & ~test_episode).flatten(),
            "test": torch.nonzero(keep & test_episode).flatten(),
        }
        counts = np.bincount(clips[task][clips[task] >= 0], minlength=len(CLASSES))
        print(f"{task}: {dict(zip(CLASSES, counts.tolist(), strict=True))}")
    results: dict = {
        "env": cfg.env.id,
        "encoder_run": str(args.encoder),
        "episodes": len(episodes),
        "rows": {},
    }
    results["clips"] = {
        task: {split: len(t[split]) for split in ("train", "test")} for task, t in tasks.items()
    }
    protocol = attentive_protocol(args, "classification")
    with tempfile.TemporaryDirectory() as scratch:
        models = encoders(Path(args.encoder), Path(scratch), args.rows)
        heads = models["pretrained"].num_heads  # the stage-1 encoder's, for every encoder's probe
        for name in args.rows:
            encoder, tic = models[name], time.perf_counter()
            x, grid = clip_tokens(encoder, frames, clips["frames"])
            row = {}
            for task, t in tasks.items():
                train, test, labels = t["train"], t["test"], t["labels"]
                onehot = {task: F.one_hot(labels.clamp_min(0), len(CLASSES)).double()}
                val = train[episode[train] % 4 == 0]
                linear = linear_probes(x, onehot, train, test, val, top1_loss)[task]
                read = attentive_input(x, grid, train)
                probe = train_probe(
                    FeatureSet(read[train], labels[train]),
                    FeatureSet(read[test], labels[test]),
                    protocol,
                    num_heads=heads,
                )
                row[task] = {
                    f"{kind} {measure}": class_mean_recall(outputs, labels[test], k)
                    for kind, outputs in (("linear", linear), ("attentive", probe.test_outputs))
                    for measure, k in (("top1", 1), ("recall@3", 3))
                }
            row["seconds"] = time.perf_counter() - tic
            results["rows"][name] = row
            print(f"{name}: {json.dumps(row)}")
    print_table(results)
    write_results(results, args.out, "motion_probes")


def print_table(results: dict) -> None:
    clips = results["clips"]
    print(f"\nAttentive probes on frozen clip features, {results['env']}, {results['episodes']} episodes "
          f"(recognition {clips['recognition']['train']} / {clips['recognition']['test']} clips, anticipation "
          f"{clips['anticipation']['train']} / {clips['anticipation']['test']}; encoder run "
          f"{results['encoder_run']}), class-mean %:\n")  # fmt: skip
    print(
        "| encoder (probe: linear / attentive) | recognition top-1 | anticipation top-1 | anticipation recall@3 |"
    )
    print("|---|---:|---:|---:|")
    for encoder, row in results["rows"].items():
        cells = [
            f"{row[task][f'linear {measure}']:.1%} / {row[task][f'attentive {measure}']:.1%}"
            for task, measure in (
                ("recognition", "top1"),
                ("anticipation", "top1"),
                ("anticipation", "recall@3"),
            )
        ]
        print(f"| {encoder} | " + " | ".join(cells) + " |")
    print(f"| chance | {1 / len(CLASSES):.1%} | {1 / len(CLASSES):.1%} | {3 / len(CLASSES):.1%} |")


if __name__ == "__main__":
    main()
