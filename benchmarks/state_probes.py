"""What does a frozen stage-1 encoder know about the physical state? Probes on held-out episodes.

V-JEPA's frozen evaluation, pointed at what a robot needs: from the frozen latent of one frame (the world
model's own view: every patch token, layer-normed, as `FrameEncoder` gives the predictor), regress the
state and report the held-out error in the state's units:

- arm worlds: the grasp point (cm, Euclidean), the gripper opening (cm) and, with a block, the block's
  centre (cm, Euclidean); Two Rooms: the agent position (px); DMC reacher: the joint angles (rad);
- two probes: linear (ridge regression on all tokens concatenated, its penalty chosen on a validation
  part of the training episodes) and attentive (V-JEPA's cross-attention probe, `worldjepa.eval.frozen`,
  on the tokens standardised at each place, with a code of the place: `attentive_input`);
- three encoders, the world model's ablations: the stage-1 run's encoder (pretrained), a random-init
  encoder of the same shape (stage 1 skipped), and raw pixel patches of the same patch size.

The episodes are made here (noisy scripted expert or held random actions, as `worldjepa collect`), reset
from the test seed range, which is checked against the stage-1 run's training data. Episodes split 2:1
into probe training and held-out test.

    python benchmarks/state_probes.py -c wm_arm_pickplace --encoder runs/pnp20/encoder --episodes 60

Prints a markdown table (and writes it with every number to `--out`/state_probes.json).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

os.environ.setdefault("MUJOCO_GL", "egl")

from worldjepa.eval.frozen import FeatureSet, ProbeConfig, train_probe  # noqa: E402
from worldjepa.interop.pretrain_run import load_encoder, run_config  # noqa: E402
from worldjepa.interop.worldjepa_format import load_modules  # noqa: E402
from worldjepa.nn.frame_encoder import FrameEncoder  # noqa: E402
from worldjepa.nn.pos_embed import sincos_table  # noqa: E402
from worldjepa.presets import SPLIT_SEEDS, WorldModelPreset, load_config  # noqa: E402
from worldjepa.stages.collect import run_episode  # noqa: E402
from worldjepa.stages.evaluate import check_unseen_seeds  # noqa: E402
from worldjepa.stages.posttrain import save_ablation_encoder, stage1_seeds  # noqa: E402

ENCODERS = ("pretrained", "random", "pixels")


class RecordBlock(gym.Wrapper):
    """Keeps the block's centre after reset and every step (arm worlds with a block), for the probes."""

    def reset(self, **kwargs):
        out = super().reset(**kwargs)
        self.blocks = [self.env.unwrapped.block_position]
        return out

    def step(self, action):
        out = super().step(action)
        self.blocks.append(self.env.unwrapped.block_position)
        return out


def make_episodes(cfg: WorldModelPreset, episodes: int, first_seed: int) -> list[dict]:
    """Episodes of the preset's env and collection policy mix, from reset seeds first_seed, +1, ..."""
    env = cfg.env.make()
    has_block = getattr(env.unwrapped, "has_block", False)
    if has_block:
        env = RecordBlock(env)
    rng = np.random.default_rng(first_seed)
    out = []
    for i in range(episodes):
        policy = "expert" if rng.random() < cfg.collect.expert_fraction else "random"
        episode = run_episode(env, first_seed + i, policy, int(rng.integers(2**31)), cfg.collect.noise)
        if has_block:
            episode["blocks"] = np.stack(env.blocks)
        out.append(episode)
    env.close()
    return out


def targets(cfg: WorldModelPreset, episodes: list[dict]) -> dict[str, np.ndarray]:
    """The state each probe regresses, per frame, in reporting units (name includes the unit)."""
    states = np.concatenate([e["states"] for e in episodes]).astype(np.float64)
    if cfg.env.id.startswith("worldjepa/Arm"):
        out = {"grasp point (cm)": states[:, :3] * 100, "gripper opening (cm)": states[:, 6:7] * 100}
        if "blocks" in episodes[0]:
            out["block (cm)"] = np.concatenate([e["blocks"] for e in episodes]) * 100
        return out
    unit = {"worldjepa/TwoRooms-v0": "agent position (px)", "worldjepa/DMCReacher-v0": "joint angles (rad)"}
    return {unit.get(cfg.env.id, "state"): states}


ROWS = ("pretrained", "random", "pixels")


def encoders(encoder_run: Path, scratch: Path, rows: list[str]) -> dict[str, torch.nn.Module]:
    """The stage-1 run's encoder and, of its two ablations (`worldjepa posttrain --encoder random|pixels`),
    those in `rows`; the pretrained one always (its head count sizes every probe)."""
    out = {"pretrained": load_encoder(encoder_run)}
    stage1 = run_config(encoder_run)
    for kind in set(rows) - {"pretrained"}:
        folder = save_ablation_encoder(kind, stage1, scratch / kind)
        expect = {"encoder": ("encoder", "pixel_patches")}
        out[kind] = load_modules(folder, ["encoder"], expect=expect)["encoder"]
    return out


@torch.no_grad()
def tokens(
    encoder: torch.nn.Module, frames: np.ndarray, batch: int = 256
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """The world model's latent of each frame, every token: uint8 [M, H, W, 3] -> [M, N, D], and the
    tokens' (t, h, w) grid."""
    frame_encoder = FrameEncoder(encoder, "grid")
    pixels = torch.from_numpy(frames)
    x = torch.cat([frame_encoder(pixels[i : i + batch]) for i in range(0, len(pixels), batch)])
    return x, (1, *frame_encoder.grid)


def attentive_input(x: torch.Tensor, grid: tuple[int, ...], fit: torch.Tensor) -> torch.Tensor:
    """Tokens [M, T*H*W, D] as the attentive probe reads them: each feature of each token place
    standardised with the statistics of the `fit` examples (the ridge probe's features are too), then a
    fixed sin-cos code of the place added. Standardising takes away what every frame shows at a place
    (table, walls, the resting arm), which otherwise swamps the few tokens that change: on the raw tokens
    the probe stayed at chance on the motion clips. The place code comes after it (standardising would
    remove it) because a probe that pools tokens must know where each was, and the tokens of a RoPE
    encoder or raw pixel patches do not say; it is the same for every encoder."""
    x = (x - x[fit].mean(0)) / x[fit].std(0).clamp_min(1e-6)
    return x + sincos_table(x.shape[-1], grid, video=True).to(x)


def ridge_solver(
    x: torch.Tensor, fit: torch.Tensor, predict: torch.Tensor
) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """Linear probe: ridge regression from the standardised features of the `fit` frames to any target,
    predicted for the `predict` frames; dual form (fewer frames than features), one eigendecomposition
    serves every target and penalty (alpha, relative to the mean feature energy)."""
    x = x.flatten(1)
    mean, std = x[fit].mean(0), x[fit].std(0).clamp_min(1e-6)
    x_fit, x_predict = (x[fit] - mean) / std, (x[predict] - mean) / std
    evals, evecs = torch.linalg.eigh((x_fit @ x_fit.T).double())
    cross = (x_predict @ x_fit.T).double()

    def solve(y: torch.Tensor, alpha: float) -> torch.Tensor:
        y_mean = y[fit].mean(0).double()
        coef = evecs @ ((evecs.T @ (y[fit].double() - y_mean)) / (evals + alpha * evals.mean())[:, None])
        return cross @ coef + y_mean

    return solve


def linear_probes(
    x: torch.Tensor,
    goals: dict,
    train: torch.Tensor,
    test: torch.Tensor,
    val: torch.Tensor,
    loss: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
) -> dict[str, torch.Tensor]:
    """Held-out predictions of the ridge probe of each target for the `test` frames, its penalty chosen
    by `loss` (default: `error`) on `val` (training frames left out of a first fit), then refitted on
    every training frame."""
    loss = loss or error
    choose = ridge_solver(x, train[~torch.isin(train, val)], val)
    final = ridge_solver(x, train, test)
    alphas = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    out = {}
    for name, y in goals.items():
        best = min(alphas, key=lambda alpha: loss(choose(y, alpha), y[val]))
        out[name] = final(y, best)
    return out


def error(predictions: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean Euclidean error over frames (absolute error for one dimension)."""
    return (predictions.double() - truth.double()).norm(dim=1).mean().item()


def probe_arguments(description: str, config: str, episodes: int, out: str) -> argparse.ArgumentParser:
    """The command line of the probe benchmarks: preset, stage-1 run, episode count, probe epochs, output."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-c", "--config", default=config, help="world-model preset: env and policy mix")
    parser.add_argument("--encoder", required=True, help="the stage-1 run folder (e.g. runs/NAME/encoder)")
    parser.add_argument("--episodes", type=int, default=episodes)
    parser.add_argument("--probe-epochs", type=int, default=30, help="attentive probe epochs")
    parser.add_argument(
        "--probe-depth", type=int, default=1, help="attentive probe blocks (1: V-JEPA's, 4: V-JEPA 2's)"
    )
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=ROWS,
        default=list(ROWS),
        help="encoders to probe (the ablations depend only on the run's shape: skip them when measured)",
    )
    parser.add_argument("--out", default=out)
    parser.add_argument("overrides", nargs="*", help="preset overrides, e.g. env.variation=colors")
    return parser


def attentive_protocol(args: argparse.Namespace, task: str) -> ProbeConfig:
    """The attentive probe's protocol from the probe command line (`probe_arguments`)."""
    return ProbeConfig(kind="attentive", task=task, epochs=args.probe_epochs, depth=args.probe_depth)


def write_results(results: dict, out: str, name: str) -> None:
    """Every number of a probe benchmark as `out`/`name`.json."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")


def held_out_episodes(cfg: WorldModelPreset, encoder_run: str, count: int) -> list[dict]:
    """`count` episodes from the test seeds, once they are checked against the stage-1 run's data."""
    check_unseen_seeds(stage1_seeds(encoder_run), encoder_run)
    return make_episodes(cfg, count, SPLIT_SEEDS["test"])


def main() -> None:
    parser = probe_arguments(__doc__.splitlines()[0], "wm_arm_reach", 60, "runs/bench/state_probes")
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides, WorldModelPreset)
    tic = time.perf_counter()
    episodes = held_out_episodes(cfg, args.encoder, args.episodes)
    frames = np.concatenate([e["frames"] for e in episodes])
    episode_of = torch.from_numpy(np.repeat(np.arange(len(episodes)), [len(e["frames"]) for e in episodes]))
    train = torch.nonzero(episode_of % 3 != 2).flatten()
    test = torch.nonzero(episode_of % 3 == 2).flatten()
    val = torch.nonzero((episode_of % 3 != 2) & (episode_of % 4 == 0)).flatten()
    print(
        f"{len(episodes)} episodes, {len(frames)} frames of {cfg.env.id} in {time.perf_counter() - tic:.0f} s"
    )
    goals = {name: torch.from_numpy(values) for name, values in targets(cfg, episodes).items()}
    results: dict = {
        "env": cfg.env.id,
        "encoder_run": str(args.encoder),
        "episodes": len(episodes),
        "rows": {},
    }
    results["mean_baseline"] = {
        n: error(y[train].mean(0).expand_as(y[test]), y[test]) for n, y in goals.items()
    }
    protocol = attentive_protocol(args, "regression")
    with tempfile.TemporaryDirectory() as scratch:
        models = encoders(Path(args.encoder), Path(scratch), args.rows)
        heads = models["pretrained"].num_heads  # the stage-1 encoder's, for every encoder's probe
        for name in args.rows:
            encoder, tic = models[name], time.perf_counter()
            x, grid = tokens(encoder, frames)
            linear = linear_probes(x, goals, train, test, val)
            x = attentive_input(x, grid, train)
            row = {}
            for target, y in goals.items():
                y = y.float()
                labels = torch.zeros(len(y), dtype=torch.long)  # unused by a regression probe
                probe = train_probe(
                    FeatureSet(x[train], labels[train], y[train]),
                    FeatureSet(x[test], labels[test], y[test]),
                    protocol,
                    num_heads=heads,
                )
                row[target] = {
                    "linear": error(linear[target], y[test]),
                    "attentive": error(probe.test_outputs, y[test]),
                }
            row["seconds"] = time.perf_counter() - tic
            results["rows"][name] = row
            print(f"{name}: {json.dumps(row)}")
    print_table(results)
    write_results(results, args.out, "state_probes")


def print_table(results: dict) -> None:
    names = list(results["mean_baseline"])
    print(f"\nHeld-out error of probes on frozen latents, {results['env']}, {results['episodes']} episodes "
          f"(encoder run {results['encoder_run']}):\n")  # fmt: skip
    print("| encoder | " + " | ".join(f"{n}: linear / attentive" for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    for encoder, row in results["rows"].items():
        cells = [f"{row[n]['linear']:.2f} / {row[n]['attentive']:.2f}" for n in names]
        print(f"| {encoder} | " + " | ".join(cells) + " |")
    print(
        "| training mean (no image) | "
        + " | ".join(f"{results['mean_baseline'][n]:.2f}" for n in names)
        + " |"
    )


if __name__ == "__main__":
    main()
