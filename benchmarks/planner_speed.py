"""Seconds per re-plan of our CEM with a predictor of realistic cost, to compare with DESIGN.md: the
official CEM + V-JEPA 2-AC predictor (6x192, 4 heads, 7-D actions) takes ≈ 25 s (N=1 token per frame)
and ≈ 187 s (N=16) per 300-sample, horizon-5, 30-iteration re-plan on 2 CPU cores.

Models (`--model`, random weights, 6 layers, 192 wide, 4 heads, 7-D actions and states):
- `standin`: a plain block-causal transformer over [action, state, N frame tokens] per step that
  re-runs the whole growing sequence at every step (the official way, no key/value cache);
- `ac`: the library's V-JEPA 2-AC predictor (`worldjepa.nn.ac_predictor`), full re-run per step;
- `ac-cached`: the same predictor with cached keys/values (`worldjepa.nn.ac_rollout.cached_rollout`).
Each autoregressive step is one batched forward over all candidates.

Every CEM iteration costs the same (same batch, same shapes), so by default only `--iterations`
iterations are timed (after a one-iteration warm-up) and the re-plan time is extrapolated; pass
`--iterations 0` to time full re-plans.

    python benchmarks/planner_speed.py [--model standin|ac|ac-cached] [--iterations 2] [--bf16] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from worldjepa.planning import CEM, GoalEnergy, Latent
from worldjepa.planning.sampling_planner import EXTENSIONS_OFF

ACTION_DIM = 7
DIM = 192

#: start frame [C, N, D], actions [C, H, 7], states before each action [C, H, 7] -> frames 1..H [C, H, N, D]
Rollout = Callable[[Tensor, Tensor, Tensor], Tensor]


class StandInPredictor(nn.Module):
    """Block-causal transformer of the official predictor's shape; predicts the next frame's tokens."""

    def __init__(self, dim: int = DIM, depth: int = 6, heads: int = 4) -> None:
        super().__init__()
        self.action_embed = nn.Linear(ACTION_DIM, dim)
        self.state_embed = nn.Linear(ACTION_DIM, dim)
        self.frame_embed = nn.Linear(dim, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = nn.Linear(dim, dim)

    def forward(self, frames: Tensor, actions: Tensor, states: Tensor) -> Tensor:
        """frames [C, T, N, D], actions and states [C, T, 7] -> next frame [C, N, D]."""
        c, t, n, d = frames.shape
        conditions = [self.action_embed(actions)[:, :, None], self.state_embed(states)[:, :, None]]
        tokens = torch.cat([*conditions, self.frame_embed(frames)], dim=2).flatten(1, 2)  # [C, T*(N+2), D]
        step = torch.arange(t, device=frames.device).repeat_interleave(n + 2)
        future = step[None, :] > step[:, None]  # True = masked: a token sees the steps <= its own
        return self.head(self.blocks(tokens, mask=future).view(c, t, n + 2, d)[:, -1, 2:])

    def rollout(self, start: Tensor, actions: Tensor, states: Tensor) -> Tensor:
        frames = start[:, None]
        for t in range(actions.shape[1]):
            nxt = self(frames, actions[:, : t + 1], states[:, : t + 1])
            frames = torch.cat([frames, nxt[:, None].to(frames.dtype)], dim=1)
        return frames[:, 1:]


def make_rollout(model: str, tokens_per_frame: int, device: str) -> Rollout:
    if model == "standin":
        return StandInPredictor().to(device).eval().rollout
    from worldjepa.nn.ac_predictor import ActionConditionedPredictor
    from worldjepa.nn.ac_rollout import cached_rollout, rollout

    predictor = ActionConditionedPredictor(DIM, DIM, depth=6, num_heads=4).to(device).eval()
    side = math.isqrt(tokens_per_frame)
    grid = (side, tokens_per_frame // side)
    if model == "ac-cached":
        return lambda start, actions, states: cached_rollout(predictor, start, actions, states, grid)
    return lambda start, actions, states: rollout(
        predictor, start[:, None], actions, states, actions.shape[1], grid
    )


class BenchmarkModel:
    """A `WorldModel` around a rollout function: random frame latents [B, N, D]; the proprio state
    follows the actions (state_{t+1} = state_t + a_t)."""

    def __init__(self, rollout: Rollout, tokens_per_frame: int) -> None:
        self.rollout, self.tokens_per_frame = rollout, tokens_per_frame

    def encode(self, obs: dict[str, Tensor]) -> Latent:
        state = obs["state"]
        return Latent(torch.randn(state.shape[0], self.tokens_per_frame, DIM, device=state.device), state)

    def unroll(self, latent: Latent, actions: Tensor) -> Latent:
        states = latent.proprio[:, None] + torch.cat([torch.zeros_like(actions[:, :1]), actions.cumsum(1)], 1)
        return Latent(self.rollout(latent.visual, actions, states[:, :-1]), states[:, 1:])


def time_plan(model: BenchmarkModel, planner: CEM, device: str, bf16: bool) -> tuple[float, float]:
    """(wall, process CPU) seconds of one `planner.plan` call from a random start to a random goal.
    On a shared machine the CPU time is the steadier number (with one thread, it is the work done)."""
    start = model.encode({"state": torch.zeros(1, ACTION_DIM, device=device)})
    goal = Latent(torch.randn_like(start.visual))
    energy = GoalEnergy()
    with torch.inference_mode(), torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
        if device == "cuda":
            torch.cuda.synchronize()
        tic, cpu = time.perf_counter(), time.process_time()
        planner.plan(model.unroll, start, lambda pred: energy(pred, goal))
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - tic, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["standin", "ac", "ac-cached"], default="standin")
    parser.add_argument("--iterations", type=int, default=2, help="iterations timed per config (0 = all)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    #  name, CEM settings, {tokens per frame: official seconds per re-plan on 2 CPU cores}
    configs = [
        (
            "peer: 300 samples, H5, 30 it",
            dict(samples=300, horizon=5, top_k=30, iterations=30),
            {1: 25.0, 16: 187.0},
        ),
        ("V-JEPA 2-AC defaults: 400, H2, 10 it", dict(samples=400, horizon=2, top_k=10, iterations=10), {}),
    ]
    print(
        f"model {args.model}, device {args.device}, {torch.get_num_threads()} threads, "
        f"{'bf16' if args.bf16 else 'fp32'}, load average {os.getloadavg()[0]:.1f}"
    )
    header = (
        f"{'config':38s} {'N':>3s} {'s/iter':>8s} {'cpu s/iter':>10s} {'s/re-plan':>10s} {'official':>9s}"
    )
    print(header + "\n" + "-" * len(header))
    # V-JEPA 2-AC's search settings (momentum, no std floor, white noise, no elite reuse, no zero plan) and
    # action bounds
    fixed = dict(momentum=0.15, min_std=0.0, seed=0, **EXTENSIONS_OFF)
    bounds = dict(fixed, init_std=0.05, low=-0.075, high=0.075)
    for tokens in (1, 16):
        model = BenchmarkModel(make_rollout(args.model, tokens, args.device), tokens)
        for name, settings, official in configs:
            timed = args.iterations or settings["iterations"]
            time_plan(
                model, CEM(ACTION_DIM, **{**settings, **bounds, "iterations": 1}), args.device, args.bf16
            )
            planner = CEM(ACTION_DIM, **{**settings, **bounds, "iterations": timed})
            wall, cpu = (t / timed for t in time_plan(model, planner, args.device, args.bf16))
            ref = f"{official[tokens]:9.1f}" if tokens in official else f"{'-':>9s}"
            replan = wall * settings["iterations"]
            print(f"{name:38s} {tokens:3d} {wall:8.3f} {cpu:10.3f} {replan:10.2f} {ref}", flush=True)


if __name__ == "__main__":
    main()
