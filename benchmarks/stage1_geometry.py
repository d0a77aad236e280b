"""Does a stage-1 encoder see the arm? Latent geometry, effective rank and state probes on held-out frames.

For each encoder source, on the frames of a held-out trajectory folder (collect it with a seed that no
training episode used):

(a) planning geometry: per episode, the Spearman rank correlation between the latent L1 distance of each
    frame to the goal and the true grasp-point distance to the goal, averaged over episodes; with 1, 4, 16
    pooled tokens per frame and the full token grid (pooling + layer norm exactly as the world model's
    FrameEncoder). Two goals: the env's goal image (`goal_observation()` after reset with the episode's
    seed; the goal's grasp point is its state) and the episode's last frame (that frame itself excluded);
(b) effective rank, exp(entropy of the normalised singular values) (RankMe, Garrido et al. 2023),
    of the mean-pooled embeddings [frames, D] and of the per-token embeddings [frames * tokens, D]; raw
    (RankMe as the training monitor computes it) and centred (the variation across frames only);
(c) frozen probes from the features to the grasp point xyz in cm: ridge regression (alpha chosen on a
    validation split of the probe-training episodes) on 4 / 16 pooled tokens and the grid, and a small
    MLP on the 16-token features; mean Euclidean error on held-out episodes (episodes split 2:1);
(d) with --transfer, zero-shot: the same ridge probes (16 pooled tokens, grid), fitted on the --data
    training episodes, read the grasp point in other scenes (folders collected with --variation): does
    the encoder see the arm, or the scene it was trained in?

Sources: a pretraining run folder (config.yaml + latest.pt: its EMA target encoder, as stage 2 uses;
`RUN@online` for its context encoder, `RUN@step_00000300.pt` / `RUN@online:step_00000300.pt` for a kept
checkpoint),
`random` (same shape, `--random-seed`, shape from `--shape-from` run or the vjepa2_tiny 64 px preset),
`random:SEED`, or `pixels` (normalised 8x8x3 pixel patches as the 64 "tokens" of 192 values, no layer norm).

    python benchmarks/stage1_geometry.py --data runs/reach_test runs/s1_base random pixels
    python benchmarks/stage1_geometry.py --data runs/reach_test runs/s1_base --json out.json
    python benchmarks/stage1_geometry.py --data runs/reach_test runs/s1_base random --transfer runs/reach_lighting

The state layout (envs/arm.py): [x, y, z, roll, pitch, yaw, gripper]; x, y, z is the grasp point in metres.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

os.environ.setdefault("MUJOCO_GL", "egl")

from worldjepa.data.trajectories import TrajectoryDataset  # noqa: E402
from worldjepa.envs import make  # noqa: E402
from worldjepa.interop.pretrain_run import load_encoder as load_saved_encoder
from worldjepa.interop.pretrain_run import run_config  # noqa: E402
from worldjepa.models import build_encoder  # noqa: E402
from worldjepa.nn.frame_encoder import FrameEncoder  # noqa: E402
from worldjepa.presets import PretrainPreset, load_config  # noqa: E402
from worldjepa.train.checkpoint import LATEST, load_checkpoint, load_model_state  # noqa: E402

POOLS = (1, 4, 16, "grid")
RANDOM_SHAPE = ["data.image_size=64", "data.num_frames=4"]  # vjepa2_tiny as the world-model presets use it


# ----- data ---------------------------------------------------------------------------------------------


def load_episodes(root: Path, max_episodes: int | None, goal_images: bool) -> list[dict]:
    """Episodes of a trajectory folder, each with frames [T, H, W, 3] uint8, grasp [T, 3] metres, and
    (goal_images) the env's goal image and goal grasp point."""
    data = TrajectoryDataset(root, clip_length=1)
    n = data.num_episodes if max_episodes is None else min(max_episodes, data.num_episodes)
    episodes = [data.episode(i) for i in range(n)]
    env = None
    if goal_images:
        meta = data.meta
        env = make(meta["env_id"], image_size=meta["image_size"][0], variation=meta["variation"])
    out = []
    for ep in episodes:
        item = {"frames": ep["frames"], "grasp": ep["states"][:, :3].astype(np.float64)}
        if env is not None:
            obs, _ = env.reset(seed=int(ep["seed"]))
            # the reset observation must be the recorded first frame, or the seed does not replay
            if not np.array_equal(obs["pixels"], ep["frames"][0]):
                raise SystemExit(
                    f"episode seed {ep['seed']} does not replay its first frame; use --goal last"
                )
            goal = env.unwrapped.goal_observation()
            item["goal_frame"] = goal["pixels"]
            item["goal_grasp"] = goal["state"][:3].astype(np.float64)
        out.append(item)
    if env is not None:
        env.close()
    return out


# ----- features -----------------------------------------------------------------------------------------


def build(cfg: PretrainPreset) -> torch.nn.Module:
    return build_encoder(cfg.model, cfg.data.image_size, cfg.num_frames)


def load_encoder(source: str, shape_cfg: PretrainPreset, random_seed: int) -> torch.nn.Module | None:
    if source == "pixels":
        return None
    if source.split(":")[0] == "random":  # random or random:SEED
        torch.manual_seed(int(source.split(":")[1]) if ":" in source else random_seed)
        return build(shape_cfg).eval()
    run, _, which = source.partition("@")  # RUN, RUN@online, RUN@step_00000300.pt, RUN@online:step_...pt
    online = which.startswith("online")
    checkpoint = which.split(":", 1)[1] if ":" in which else (which if which and not online else LATEST)
    if not online and checkpoint == LATEST:  # a run's EMA target encoder, or a model folder's encoder
        return load_saved_encoder(Path(run)).eval()
    prefix = "encoder." if online else "target_encoder."
    state = load_checkpoint(Path(run) / checkpoint)["model"]
    state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    encoder = build(run_config(run))
    load_model_state(encoder, state, Path(run) / checkpoint)
    return encoder.eval()


def pool_tokens(tokens: torch.Tensor, side: int | None, grid: tuple[int, int], norm: bool) -> torch.Tensor:
    """FrameEncoder's pooling and layer norm on raw tokens [B, N, D] -> [B, n, D]."""
    if side is not None:
        maps = tokens.transpose(1, 2).unflatten(2, grid)
        tokens = F.adaptive_avg_pool2d(maps, side).flatten(2).transpose(1, 2)
    return F.layer_norm(tokens.float(), tokens.shape[-1:]) if norm else tokens.float()


@torch.no_grad()
def features(encoder: torch.nn.Module | None, frames: np.ndarray, batch: int = 256) -> dict:
    """Features of uint8 frames [N, H, W, 3] for every pooling in POOLS: {pool: [N, n, D]}."""
    pixels = torch.from_numpy(frames)
    if encoder is None:  # raw pixels: normalised 8x8x3 patches as tokens
        frame_encoder = None
        x = pixels.permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        x = (x - mean) / std
        p = 8
        raw = x.unfold(2, p, p).unfold(3, p, p)  # [N, 3, H/p, W/p, p, p]
        grid = raw.shape[2:4]
        raw = raw.permute(0, 2, 3, 1, 4, 5).flatten(3).flatten(1, 2)  # [N, h*w, 3*p*p]
        return {
            pool: pool_tokens(raw, None if pool == "grid" else math.isqrt(pool), grid, False)
            for pool in POOLS
        }
    frame_encoder = FrameEncoder(encoder, "grid")
    grid = tuple(encoder.grid[1:])
    raw = torch.cat(
        [encoder(frame_encoder.pixels_to_input(pixels[i : i + batch])) for i in range(0, len(pixels), batch)]
    ).float()
    out = {pool: pool_tokens(raw, None if pool == "grid" else math.isqrt(pool), grid, True) for pool in POOLS}
    # the same numbers as the world model's FrameEncoder (pooling then layer norm)
    check = FrameEncoder(encoder, 4)(pixels[:8])
    assert torch.allclose(check, out[4][:8], atol=1e-4), "pooling differs from FrameEncoder"
    return out


# ----- metrics ------------------------------------------------------------------------------------------


def effective_rank(z: torch.Tensor, center: bool) -> float:
    z = z.reshape(-1, z.shape[-1]).double()
    if center:
        z = z - z.mean(0)
    s = torch.linalg.svdvals(z)
    p = s / s.sum() + 1e-12
    return float(torch.exp(-(p * p.log()).sum()))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = a.argsort().argsort().astype(float), b.argsort().argsort().astype(float)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = math.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def geometry(
    feats: torch.Tensor, goal_feats: torch.Tensor | None, episodes: list[dict], offsets: list[int]
) -> dict:
    """Mean within-episode Spearman of latent L1 distance vs true grasp-point distance, to the goal image
    and to the last frame."""
    to_goal, to_last = [], []
    for i, ep in enumerate(episodes):
        z = feats[offsets[i] : offsets[i + 1]]  # [T, n, D]
        g = ep["grasp"]
        if goal_feats is not None:
            latent = (z - goal_feats[i]).abs().mean(dim=(1, 2)).numpy()
            to_goal.append(spearman(latent, np.linalg.norm(g - ep["goal_grasp"], axis=1)))
        latent = (z[:-1] - z[-1]).abs().mean(dim=(1, 2)).numpy()
        to_last.append(spearman(latent, np.linalg.norm(g[:-1] - g[-1], axis=1)))
    return {
        "goal": float(np.nanmean(to_goal)) if to_goal else float("nan"),
        "last": float(np.nanmean(to_last)),
    }


def ridge_probe(
    x: torch.Tensor, y: torch.Tensor, train: torch.Tensor, test: torch.Tensor, val: torch.Tensor
) -> float:
    """Ridge (dual form, standardised features), alpha picked on `val` (a part of the training episodes),
    refitted on all training frames; returns the mean Euclidean test error (y's units)."""
    x = x.float().flatten(1)
    y = y.double()

    def fit_predict(tr: torch.Tensor, te: torch.Tensor, alpha: float) -> torch.Tensor:
        mu, sd = x[tr].mean(0), x[tr].std(0).clamp_min(1e-6)
        xtr, xte = (x[tr] - mu) / sd, (x[te] - mu) / sd
        ym = y[tr].mean(0)
        k = (xtr @ xtr.T).double()
        scale = k.diagonal().mean()
        coef = torch.linalg.solve(k + alpha * scale * torch.eye(len(tr), dtype=k.dtype), y[tr] - ym)
        return (xte @ (xtr.T @ coef.float())).double() + ym

    fit = train[~torch.isin(train, val)]
    alphas = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    errors = [(fit_predict(fit, val, a) - y[val]).norm(dim=1).mean().item() for a in alphas]
    best = alphas[int(np.argmin(errors))]
    return (fit_predict(train, test, best) - y[test]).norm(dim=1).mean().item()


def mlp_probe(
    x: torch.Tensor, y: torch.Tensor, train: torch.Tensor, test: torch.Tensor, steps: int = 2000
) -> float:
    """PCA to 256 dims (fitted on train), then a 2-layer MLP (256 hidden, GELU), AdamW, minibatch 256;
    mean Euclidean test error. About 5 s on one thread."""
    torch.manual_seed(0)
    x = x.float().flatten(1)
    mu, sd = x[train].mean(0), x[train].std(0).clamp_min(1e-6)
    x = (x - mu) / sd
    _, _, v = torch.linalg.svd(x[train], full_matrices=False)
    x = x @ v[:256].T
    x = x / x[train].std(0).clamp_min(1e-6)
    ym, ys = y[train].mean(0).float(), y[train].std(0).float()
    yn = (y.float() - ym) / ys
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 256), torch.nn.GELU(), torch.nn.Linear(256, 3))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        idx = train[torch.randint(len(train), (256,))]
        loss = F.mse_loss(net(x[idx]), yn[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        pred = net(x[test]) * ys + ym
    return (pred.double() - y[test]).norm(dim=1).mean().item()


# ----- main ---------------------------------------------------------------------------------------------


def measure(
    source: str,
    episodes: list[dict],
    args: argparse.Namespace,
    shape_cfg: dict,
    scenes: dict[str, list[dict]],
) -> dict:
    start = time.perf_counter()
    encoder = load_encoder(source, shape_cfg, args.random_seed)
    frames = np.concatenate([ep["frames"] for ep in episodes])
    offsets = np.concatenate([[0], np.cumsum([len(ep["frames"]) for ep in episodes])]).tolist()
    feats = features(encoder, frames)
    goal_feats = None
    if "goal_frame" in episodes[0]:
        goal_feats = features(encoder, np.stack([ep["goal_frame"] for ep in episodes]))
    row: dict = {"source": source}
    for pool in POOLS:
        g = geometry(feats[pool], None if goal_feats is None else goal_feats[pool], episodes, offsets)
        row[f"rho_goal_{pool}"] = g["goal"]
        row[f"rho_last_{pool}"] = g["last"]
    row["erank_mean"] = effective_rank(feats[1], center=False)
    row["erank_mean_c"] = effective_rank(feats[1], center=True)
    row["erank_token"] = effective_rank(feats["grid"], center=False)
    row["erank_token_c"] = effective_rank(feats["grid"], center=True)
    # probes: episodes split 2:1 (train:test), a quarter of the training episodes validates ridge's alpha
    y = torch.from_numpy(np.concatenate([ep["grasp"] for ep in episodes]) * 100.0)  # cm
    episode_of = torch.from_numpy(np.repeat(np.arange(len(episodes)), np.diff(offsets)))
    test = torch.nonzero(episode_of % 3 == 2).flatten()
    train = torch.nonzero(episode_of % 3 != 2).flatten()
    val = torch.nonzero((episode_of % 3 != 2) & (episode_of % 4 == 0)).flatten()
    row["probe_baseline_cm"] = (y[test] - y[train].mean(0)).norm(dim=1).mean().item()
    for pool in (4, 16, "grid"):
        row[f"ridge_{pool}_cm"] = ridge_probe(feats[pool], y, train, test, val)
    if args.mlp:
        row["mlp_16_cm"] = mlp_probe(feats[16], y, train, test)
    for scene, scene_episodes in scenes.items():  # zero-shot: fitted on --data, read in another scene
        scene_feats = features(encoder, np.concatenate([ep["frames"] for ep in scene_episodes]))
        scene_y = torch.from_numpy(np.concatenate([ep["grasp"] for ep in scene_episodes]) * 100.0)
        read = torch.arange(len(y), len(y) + len(scene_y))
        for pool in (16, "grid"):
            x = torch.cat([feats[pool], scene_feats[pool]])
            row[f"{scene} {pool}"] = ridge_probe(x, torch.cat([y, scene_y]), train, read, val)
    row["seconds"] = time.perf_counter() - start
    return row


COLUMNS = [
    ("erank_mean", "erank mean", "{:.1f}"),
    ("erank_mean_c", "(ctr)", "{:.1f}"),
    ("erank_token", "erank tok", "{:.1f}"),
    ("erank_token_c", "(ctr)", "{:.1f}"),
    ("rho_goal_1", "rho goal 1", "{:.3f}"),
    ("rho_goal_4", "4", "{:.3f}"),
    ("rho_goal_16", "16", "{:.3f}"),
    ("rho_goal_grid", "grid", "{:.3f}"),
    ("rho_last_4", "rho last 4", "{:.3f}"),
    ("rho_last_16", "16", "{:.3f}"),
    ("rho_last_grid", "grid", "{:.3f}"),
    ("ridge_4_cm", "ridge 4 cm", "{:.2f}"),
    ("ridge_16_cm", "16", "{:.2f}"),
    ("ridge_grid_cm", "grid", "{:.2f}"),
    ("mlp_16_cm", "mlp 16", "{:.2f}"),
    ("seconds", "s", "{:.0f}"),
]


def print_table(rows: list[dict]) -> None:
    transfers = [(key, key, "{:.2f}") for key in rows[0] if key.endswith((" 16", " grid"))]
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)] + transfers
    name_width = max(len(r["source"]) for r in rows)
    print(" | ".join([f"{'source':<{name_width}}"] + [c[1] for c in cols]))
    for r in rows:
        cells = [f"{r['source']:<{name_width}}"]
        for key, title, fmt in cols:
            cells.append(f"{fmt.format(r[key]) if key in r else '-':>{len(title)}}")
        print(" | ".join(cells))
    print(f"(probe baseline, predicting the training mean: {rows[0]['probe_baseline_cm']:.2f} cm)")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sources", nargs="+", help="run folders, 'random', 'pixels'")
    parser.add_argument("--data", required=True, help="held-out trajectory folder")
    parser.add_argument("--episodes", type=int, default=None, help="use the first N episodes (default all)")
    parser.add_argument(
        "--goal", choices=["image", "last"], default="image", help="image: also the env's goal image"
    )
    parser.add_argument(
        "--shape-from", default=None, help="run folder whose config shapes the random encoder"
    )
    parser.add_argument("--random-seed", type=int, default=0)
    parser.add_argument("--no-mlp", dest="mlp", action="store_false")
    parser.add_argument("--json", default=None, help="append the rows to this JSON-lines file")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--transfer", nargs="*", default=[], help="trajectory folders of other scenes, read zero-shot (cm)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.shape_from:
        shape_cfg = run_config(args.shape_from)
    else:
        shape_cfg = load_config("vjepa2_tiny", RANDOM_SHAPE, PretrainPreset)
    episodes = load_episodes(Path(args.data), args.episodes, args.goal == "image")
    print(
        f"{len(episodes)} episodes, {sum(len(e['frames']) for e in episodes)} frames from {args.data}",
        file=sys.stderr,
    )
    scenes = {}
    for root in args.transfer:
        scene = TrajectoryDataset(root, clip_length=1).meta["variation"]
        scenes[scene if scene not in scenes else root] = load_episodes(Path(root), args.episodes, False)
    rows = []
    for source in args.sources:
        rows.append(measure(source, episodes, args, shape_cfg, scenes))
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps({**rows[-1], "data": args.data}) + "\n")
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
