"""Seconds per `ACWorldModel.unroll`: the planner's hot loop (one call per CEM/MPPI iteration).

Configuration peers benchmarked (DESIGN.md): AC predictor 6 layers x 192 wide, 4 heads, 7-D actions
and states, 300 candidates, horizon 5, 1 (or 16) tokens per frame; the official CEM takes 0.85 s
(6.2 s) per iteration there, re-running the whole growing sequence at every step. We time:
- `full sequence`: our predictor run the official way (`rollout`, no cache), fp32;
- `kv cache`: `ACWorldModel.unroll` (cached rollout + learned proprio head), fp32 and bf16 autocast.
Reports the fastest and the median of `--repeats` timed calls after one warm-up: on a shared machine
the fastest call is the one least disturbed by other processes.

    python benchmarks/ac_unroll_speed.py [--tokens 1 16] [--samples 300] [--horizon 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch

from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.ac_rollout import rollout
from worldjepa.nn.proprio_head import ProprioHead
from worldjepa.nn.vit import VisionTransformer
from worldjepa.planning import Latent
from worldjepa.planning.ac_world_model import ACWorldModel
from worldjepa.train.device import native_bf16

DIM, DIM_A = 192, 7


def seconds(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(fastest, median) wall-clock seconds of `repeats` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[1, 16], help="tokens per frame (squares)")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    encoder = VisionTransformer(img_size=64, patch_size=16, embed_dim=DIM, depth=1, num_heads=4)
    predictor = ActionConditionedPredictor(DIM, 192, 6, 4, 64, 16, action_dim=DIM_A, state_dim=DIM_A)
    head = ProprioHead(DIM_A, DIM_A)
    actions = torch.randn(args.samples, args.horizon, DIM_A)
    print(f"{args.samples} candidates, horizon {args.horizon}, threads {torch.get_num_threads()}")
    if not native_bf16(torch.device("cpu")):
        print("this CPU has no native bf16: the bf16 rows run in float32 (`native_bf16`)")
    for tokens in args.tokens:
        side = int(tokens**0.5)
        start = Latent(torch.randn(1, tokens, DIM), torch.randn(1, DIM_A))
        states = torch.randn(args.samples, args.horizon, DIM_A)
        frames = start.visual.expand(args.samples, -1, -1)[:, None]
        with torch.inference_mode():
            full_sequence = partial(rollout, predictor, frames, actions, states, args.horizon, (side, side))
            rows = [("full sequence, fp32", seconds(full_sequence, args.repeats))]
        for precision in ("fp32", "bf16"):
            model = ACWorldModel(encoder, predictor, head, tokens, precision=precision)
            rows.append(
                (f"kv cache, {precision}", seconds(partial(model.unroll, start, actions), args.repeats))
            )
        for name, (fastest, median) in rows:
            print(
                f"N={tokens:3d}  {name:20s} fastest {fastest * 1e3:7.1f} ms, median {median * 1e3:7.1f} ms "
                f"per unroll  ({rows[0][1][0] / fastest:4.1f}x)"
            )


if __name__ == "__main__":
    main()
