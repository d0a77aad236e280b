"""Load time and peak memory of a ViT-L checkpoint (1024 wide, 24 deep, 16 heads, ~300M parameters):
worldjepa's model folder (safetensors, built on the meta device, tensors assigned) against plain
`torch.load` + `load_state_dict` into a freshly constructed model, in fp32 and bf16.

Each load runs in its own subprocess, so peaks do not mix; the peak is VmHWM (peak resident set,
which counts memory-mapped file pages once touched) minus the resident set before the load.
safetensors maps the file and reads a page only when it is touched, so the folder "loads" almost
for free; "ready" adds one pass that reads every weight (what the first forward pass does), which
is the fair comparison. The checkpoints are created once in a temporary folder (about 3.6 GB on
disk) and read from a warm page cache.

    python benchmarks/checkpoint_load.py [--repeats 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from worldjepa.interop import load_modules, save_modules
from worldjepa.nn.vit import VisionTransformer

VIT_L = dict(
    img_size=256, patch_size=16, embed_dim=1024, depth=24, num_heads=16, num_frames=16, pos_embed="rope"
)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def memory_kb(field: str) -> int:
    """A field of /proc/self/status (VmRSS, VmHWM) in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def child(method: str, path: str, dtype: str) -> None:
    """Load once, then read every weight; print times (s) and peaks (MB) as JSON (run in a fresh process)."""
    torch.set_num_threads(2)
    before = memory_kb("VmRSS")
    start = time.perf_counter()
    if method == "worldjepa":
        model = load_modules(path)["encoder"]
    else:
        model = VisionTransformer(**VIT_L).to(DTYPES[dtype])
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    loaded, load_peak = time.perf_counter() - start, memory_kb("VmHWM")
    assert next(model.parameters()).dtype == DTYPES[dtype]
    with torch.no_grad():
        sum(float(p.sum()) for p in model.parameters())  # touch every weight once
    ready = time.perf_counter() - start
    mb = lambda kb: (kb - before) / 1024
    print(
        json.dumps(
            {"load_s": loaded, "load_mb": mb(load_peak), "ready_s": ready, "ready_mb": mb(memory_kb("VmHWM"))}
        )
    )


def create(root: Path) -> dict[tuple[str, str], Path]:
    """The four checkpoints: (method, dtype) -> path."""
    torch.manual_seed(0)
    model = VisionTransformer(**VIT_L).eval()
    print(f"ViT-L: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters", flush=True)
    paths = {}
    for name, dtype in DTYPES.items():
        paths["torch", name] = root / f"vitl_{name}.pt"
        torch.save({k: v.to(dtype) for k, v in model.state_dict().items()}, paths["torch", name])
        paths["worldjepa", name] = save_modules(root / f"vitl_{name}", {"encoder": model}, dtype=name)
    return paths


def measure(method: str, path: Path, dtype: str, repeats: int) -> dict[str, float]:
    """Medians of the child's numbers over `repeats` fresh processes."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, __file__, "--child", method, str(path), dtype],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the checkpoints here (kept) instead of a temp dir")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "PATH", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        paths = create(root)
        print(f"median of {args.repeats} fresh processes, 2 threads; ratios: worldjepa / torch, when ready")
        header = ["load s", "peak MB", "ready s", "peak MB", "time x", "memory x"]
        print(f"{'dtype':<6}{'method':<38}" + "".join(f"{h:>9}" for h in header))
        for dtype in DTYPES:
            base = measure("torch", paths["torch", dtype], dtype, args.repeats)
            ours = measure("worldjepa", paths["worldjepa", dtype], dtype, args.repeats)
            for name, r in [
                ("torch.load + load_state_dict", base),
                ("worldjepa folder (safetensors, meta)", ours),
            ]:
                cells = [r["load_s"], r["load_mb"], r["ready_s"], r["ready_mb"]]
                ratios = [r["ready_s"] / base["ready_s"], r["ready_mb"] / base["ready_mb"]]
                print(
                    f"{dtype:<6}{name:<38}"
                    + "".join(f"{x:9.2f}" if i % 2 == 0 else f"{x:9.0f}" for i, x in enumerate(cells))
                    + "".join(f"{x:9.2f}" for x in ratios)
                )


if __name__ == "__main__":
    main()
