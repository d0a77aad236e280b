"""Seconds per re-plan of our CEM with a stand-in predictor of realistic cost.

The stand-in mimics the V-JEPA 2-AC predictor at the size peers benchmarked (6 layers, 192 wide,
4 heads, 7-D actions and states, random weights): per time step the tokens are [action, state,
N frame tokens], attention is block-causal over time, and the unroll is autoregressive, re-running
the whole growing sequence at every step (no key/value cache, like the official code), as one
batched forward over all candidates per step. Compare with DESIGN.md: the official CEM takes
≈ 25 s (N=1) and ≈ 187 s (N=16) per 300-sample, horizon-5, 30-iteration re-plan on 2 CPU cores.

Every CEM iteration costs the same (same batch, same shapes), so by default only `--iterations`
iterations are timed (after one warm-up) and the re-plan time is extrapolated from them; pass
`--iterations 0` to time full re-plans.

    python benchmarks/planner_speed.py [--iterations 2] [--bf16] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch import Tensor, nn

from worldjepa.planning import CEM, GoalEnergy, Latent

ACTION_DIM = 7


class StandInPredictor(nn.Module):
    """Action-conditioned predictor of the official shape; predicts the next frame's N tokens."""

    def __init__(self, tokens_per_frame: int, dim: int = 192, depth: int = 6, heads: int = 4) -> None:
        super().__init__()
        self.tokens_per_frame = tokens_per_frame
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
        tokens = torch.cat(
            [
                self.action_embed(actions)[:, :, None],
                self.state_embed(states)[:, :, None],
                self.frame_embed(frames),
            ],
            dim=2,
        ).flatten(1, 2)  # [C, T*(N+2), D]
        step = torch.arange(t, device=frames.device).repeat_interleave(n + 2)
        future = step[None, :] > step[:, None]  # True = masked: a token sees steps <= its own
        out = self.blocks(tokens, mask=future)
        return self.head(out.view(c, t, n + 2, d)[:, -1, 2:])


class StandInModel:
    """The stand-in as a `WorldModel`: states follow the actions (state_{t+1} = state_t + a_t)."""

    def __init__(self, predictor: StandInPredictor) -> None:
        self.predictor = predictor

    def encode(self, obs: dict[str, Tensor]) -> Latent:
        batch = obs["state"].shape[0]
        visual = torch.randn(batch, self.predictor.tokens_per_frame, 192, device=obs["state"].device)
        return Latent(visual, obs["state"])

    def unroll(self, latent: Latent, actions: Tensor) -> Latent:
        frames = latent.visual[:, None]  # [C, 1, N, D]
        states = latent.proprio[:, None] + torch.cat([torch.zeros_like(actions[:, :1]), actions.cumsum(1)], 1)
        for t in range(actions.shape[1]):
            nxt = self.predictor(frames, actions[:, : t + 1], states[:, : t + 1])
            frames = torch.cat([frames, nxt[:, None].to(frames.dtype)], dim=1)
        return Latent(frames[:, 1:], states[:, 1:])


def time_plan(model: StandInModel, planner: CEM, device: str, bf16: bool) -> float:
    """Seconds for one `planner.plan` call from a random start toward a random goal."""
    start = model.encode({"state": torch.zeros(1, ACTION_DIM, device=device)})
    goal = Latent(torch.randn_like(start.visual))
    energy = GoalEnergy()
    with torch.inference_mode(), torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
        if device == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        planner.plan(model.unroll, start, lambda pred: energy(pred, goal))
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=2, help="iterations timed per config (0 = all)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
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
        f"device {args.device}, {torch.get_num_threads()} threads, {'bf16' if args.bf16 else 'fp32'}, "
        f"load average {os.getloadavg()[0]:.1f}; stand-in predictor 6x192, 4 heads, 7-D actions"
    )
    header = f"{'config':38s} {'N':>3s} {'s/iter':>8s} {'s/re-plan':>10s} {'official':>9s}"
    print(header + "\n" + "-" * len(header))
    for tokens in (1, 16):
        model = StandInModel(StandInPredictor(tokens).to(args.device).eval())
        for name, settings, official in configs:
            timed = args.iterations or settings["iterations"]
            bounds = dict(init_std=0.05, low=-0.075, high=0.075)
            time_plan(
                model, CEM(ACTION_DIM, **{**settings, **bounds, "iterations": 1}), args.device, args.bf16
            )
            planner = CEM(ACTION_DIM, **{**settings, **bounds, "iterations": timed})
            per_iter = time_plan(model, planner, args.device, args.bf16) / timed
            ref = f"{official[tokens]:9.1f}" if tokens in official else f"{'-':>9s}"
            replan = per_iter * settings["iterations"]
            print(f"{name:38s} {tokens:3d} {per_iter:8.3f} {replan:10.2f} {ref}", flush=True)


if __name__ == "__main__":
    main()
