"""Pretrain a tiny preset, then probe its frozen encoder against a random encoder of the same shape.

    python benchmarks/pretrain_probe.py ijepa_tiny
    python benchmarks/pretrain_probe.py vjepa_tiny [key.sub=value ...]

Prints the pretraining wall time and the probe table (the README's frozen-evaluation numbers).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from worldjepa.presets import PretrainPreset, load_config
from worldjepa.stages.pretrain import run_pretrain
from worldjepa.stages.probe import run_probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--run-dir", default=None, help="default runs/bench_<preset> (replaced)")
    args = parser.parse_args()
    run_dir = Path(args.run_dir or f"runs/bench_{args.preset}")
    shutil.rmtree(run_dir, ignore_errors=True)
    cfg = load_config(args.preset, args.overrides, PretrainPreset)
    tic = time.perf_counter()
    run_pretrain(cfg, run_dir)
    pretrain_s = time.perf_counter() - tic
    tic = time.perf_counter()
    result = run_probe(run_dir)
    probe_s = time.perf_counter() - tic
    print(f"\n{args.preset}: pretraining {pretrain_s / 60:.1f} min, probe {probe_s / 60:.1f} min "
          f"({cfg.probe.kind} probe, {cfg.probe.task}, {cfg.data.dataset} test split)")  # fmt: skip
    print(result.table())


if __name__ == "__main__":
    main()
