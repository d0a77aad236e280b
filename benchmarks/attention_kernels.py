"""Which attention kernel is faster for a training step: PyTorch's `scaled_dot_product_attention` or the
explicit q.k^T -> softmax -> .v, by device, dtype and sequence length (forward + backward, same inputs,
alternating in one process). `worldjepa.nn.attention.use_explicit_attention` encodes the rule this
measures.

    python benchmarks/attention_kernels.py [--device cpu] [--lengths 16 64 128 256 512 1024]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from worldjepa.nn.attention import explicit_attention, use_explicit_attention


def step_seconds(fn, q, k, v, repeats: int) -> float:
    """Median seconds of forward + backward of `fn(q, k, v)`."""
    times = []
    for _ in range(repeats + 1):
        for t in (q, k, v):
            t.grad = None
        tic = time.perf_counter()
        fn(q, k, v).float().square().mean().backward()
        if q.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - tic)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 128, 256, 512, 1024])
    parser.add_argument("--batch-heads", type=int, default=192, help="batch x heads (64 images x 3 heads)")
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"{args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch x heads {args.batch_heads}, head dim {args.head_dim}")  # fmt: skip
    print("| dtype | tokens | SDPA ms | explicit ms | explicit / SDPA speed | rule picks |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for dtype in (torch.float32, torch.bfloat16):
        for n in args.lengths:
            shape = (args.batch_heads // 3, 3, n, args.head_dim)
            q, k, v = (torch.randn(shape, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
            sdpa = step_seconds(F.scaled_dot_product_attention, q, k, v, args.repeats)
            explicit = step_seconds(explicit_attention, q, k, v, args.repeats)
            pick = "explicit" if use_explicit_attention(q) else "SDPA"
            print(f"| {str(dtype).removeprefix('torch.')} | {n} | {1e3 * sdpa:.2f} | {1e3 * explicit:.2f} "
                  f"| {sdpa / explicit:.2f}x | {pick} |")  # fmt: skip


if __name__ == "__main__":
    main()
