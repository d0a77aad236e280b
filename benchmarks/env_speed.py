"""Frames per second of the arm envs on one CPU core: one env step (physics substeps) plus rendering
the 64x64 observation, with the scripted expert choosing actions.

    python benchmarks/env_speed.py [--steps 2000] [--image-size 64]

Threads are limited to one before any library starts (BLAS, and Mesa's llvmpipe rasteriser, which
renders such small frames faster in the calling thread), and the process is pinned to one core.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("LP_NUM_THREADS", "0")
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse  # noqa: E402
import time  # noqa: E402

from worldjepa.envs.registry import make  # noqa: E402

WARMUP_STEPS = 50
TASKS = {"worldjepa/ArmReach-v0": 1000, "worldjepa/ArmPush-v0": 500, "worldjepa/ArmPickPlace-v0": 500}


def frames_per_second(env_id: str, steps: int, image_size: int) -> float:
    """Env steps (each rendering one frame) per second, resets excluded."""
    env = make(env_id, image_size=image_size)
    env.reset(seed=0)
    for _ in range(WARMUP_STEPS):  # the first frames compile Mesa's shaders
        env.step(env.unwrapped.expert_action())
    env.reset(seed=0)
    elapsed, done = 0.0, 0
    while done < steps:
        start = time.perf_counter()
        _, _, _, truncated, _ = env.step(env.unwrapped.expert_action())
        elapsed += time.perf_counter() - start
        done += 1
        if truncated:
            env.reset(seed=done)
    env.close()
    return steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    print(f"{'env':<28}{'frames/s':>10}{'target':>8}")
    for env_id, target in TASKS.items():
        fps = frames_per_second(env_id, args.steps, args.image_size)
        print(f"{env_id:<28}{fps:>10.0f}{target:>8}")


if __name__ == "__main__":
    main()
