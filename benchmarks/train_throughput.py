"""Training throughput of the tiny presets: samples/s and achieved FLOP/s as a fraction of this
machine's measured matmul peak, in fp32 and under bf16 autocast.

    python benchmarks/train_throughput.py [--presets ijepa_tiny vjepa_tiny] [--steps 10] [--device cuda]

FLOPs of one training step (forward + backward) are counted by torch's FlopCounterMode on the real
step; the peak is the best of a few large square matmuls in the same dtype.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from worldjepa.data.datasets import build_dataset
from worldjepa.models import build_mask_collator, build_method
from worldjepa.presets import PretrainPreset, load_config
from worldjepa.train.device import autocast, resolve_device, to_device


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: torch.dtype, device: torch.device, repeats: int = 5) -> float:
    n = 8192 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def measure(
    preset: str, precision: str, steps: int, overrides: list[str], device: torch.device
) -> tuple[float, float]:
    """(samples/s, FLOP/s) of full training steps (forward, backward, AdamW, EMA) on one fixed batch."""
    cfg = load_config(preset, overrides, PretrainPreset)
    torch.manual_seed(0)
    method = build_method(cfg).to(device)
    dataset = build_dataset(cfg.data, cfg.video, train=True)
    collate = build_mask_collator(cfg.masks, method.encoder)
    size = cfg.train.batch_size
    batch = to_device(
        collate([{**dataset.sample(i, torch.Generator().manual_seed(i)), "seed": i} for i in range(size)]),
        device,
    )
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-4)

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
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    return size / seconds, flops / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["ijepa_tiny", "vjepa_tiny"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("overrides", nargs="*", help="preset overrides, e.g. train.batch_size=32")
    args = parser.parse_args()
    device = resolve_device(args.device)
    peaks = {"fp32": matmul_peak(torch.float32, device), "bf16": matmul_peak(torch.bfloat16, device)}
    print(f"{device}, threads {torch.get_num_threads()}; matmul peak fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")  # fmt: skip
    print(f"{'preset':14s} {'precision':9s} {'samples/s':>10s} {'GFLOP/s':>9s} {'of peak':>8s}")
    for preset in args.presets:
        for precision in ("fp32", "bf16"):
            rate, flops = measure(preset, precision, args.steps, args.overrides, device)
            print(
                f"{preset:14s} {precision:9s} {rate:10.1f} {flops / 1e9:9.1f} {flops / peaks[precision]:8.1%}"
            )


if __name__ == "__main__":
    main()
