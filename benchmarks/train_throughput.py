"""Training throughput of the tiny presets: samples/s and achieved FLOP/s as a fraction of this
machine's measured matmul peak, in fp32 and under bf16 autocast.

    python benchmarks/train_throughput.py [--presets ijepa_tiny vjepa_tiny] [--steps 10]

FLOPs of one training step (forward + backward) are counted by torch's FlopCounterMode on the real
step; the peak is the best of a few large square matmuls in the same dtype.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from worldjepa.config import apply_overrides, load_preset
from worldjepa.pretrain import build_dataset, build_mask_collator, build_method, is_video
from worldjepa.train.device import autocast


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def measure(preset: str, precision: str, steps: int, overrides: list[str]) -> tuple[float, float]:
    """(samples/s, FLOP/s) of full training steps (forward, backward, AdamW, EMA) on one fixed batch."""
    cfg = apply_overrides(load_preset(preset), overrides)
    torch.manual_seed(0)
    method = build_method(cfg)
    dataset = build_dataset(cfg["data"], is_video(cfg), train=True)
    collate = build_mask_collator(cfg, method.encoder)
    size = cfg["train"]["batch_size"]
    batch = collate([{**dataset.sample(i, torch.Generator().manual_seed(i)), "seed": i} for i in range(size)])
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-4)
    device = torch.device("cpu")

    def step() -> None:
        with autocast(device, precision):
            loss = method(batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        method.after_optimizer_step(0.5)

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return size / seconds, flops / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["ijepa_tiny", "vjepa_tiny"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("overrides", nargs="*", help="preset overrides, e.g. train.batch_size=32")
    args = parser.parse_args()
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"threads {torch.get_num_threads()}; matmul peak fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")  # fmt: skip
    print(f"{'preset':14s} {'precision':9s} {'samples/s':>10s} {'GFLOP/s':>9s} {'of peak':>8s}")
    for preset in args.presets:
        for precision in ("fp32", "bf16"):
            rate, flops = measure(preset, precision, args.steps, args.overrides)
            print(
                f"{preset:14s} {precision:9s} {rate:10.1f} {flops / 1e9:9.1f} {flops / peaks[precision]:8.1%}"
            )


if __name__ == "__main__":
    main()
