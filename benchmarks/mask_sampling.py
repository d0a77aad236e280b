"""Time the multiblock mask samplers: milliseconds per batch of 64 (median), as a DataLoader worker runs
them (one thread). For comparison, the official I-JEPA mask collator takes about 13.6 ms per batch of 64
at an 8x8 grid on a 2-core CPU.

    python benchmarks/mask_sampling.py [--batch-size 64] [--repeats 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from worldjepa.masks import MultiBlock2D, MultiBlock3D


def ms_per_batch(sampler: Callable, batch_size: int, repeats: int) -> float:
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):  # warm-up
        sampler(batch_size, generator)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sampler(batch_size, generator)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = [
        ("I-JEPA 2D multiblock, grid 8x8", MultiBlock2D((8, 8))),
        ("I-JEPA 2D multiblock, grid 14x14", MultiBlock2D((14, 14))),
        ("V-JEPA 3D multiblock, grid 8x14x14", MultiBlock3D((8, 14, 14))),
    ]
    print(f"batch {args.batch_size}, median of {args.repeats} batches, 1 thread")
    for name, sampler in cases:
        print(f"{name:<36} {ms_per_batch(sampler, args.batch_size, args.repeats):7.3f} ms/batch")


if __name__ == "__main__":
    main()
