"""The closed-loop evaluation table of the README: one saved world model, several rows (the preset's
planner, the image-only V-JEPA 2-AC energy, unseen scene variations, the true simulator as the
model, random actions), N episodes each from seeds that the training data never used.

    python benchmarks/planning_table.py --model checkpoints/arm_reach --episodes 50 [key.sub=value ...] \
        --rows world_model image_only random simulator colors lighting distractors

Each row writes `<out>/<row>/report.json`; the table printed at the end reads every report under
`--out`, so rows can be run by several processes side by side (one torch thread each) and merged;
`--workers N` splits each row's episodes over N processes (the same seeds, merged in order).
Preset overrides (`key.sub=value`) apply to every row, e.g. `env.id=worldjepa/TwoRooms-v0`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from worldjepa.config import apply_overrides, load_preset
from worldjepa.eval.closed_loop import EpisodeRecord, evaluate, summarise
from worldjepa.evaluate import BASELINES, baseline_policy, env_factory, world_model_agent
from worldjepa.viz.episodes import plot_episodes
from worldjepa.world_model import ACWorldModel

#: Rows: the overrides they add to the preset. Variation rows plan in a scene the model never saw.
ROWS = {
    "world_model": [],
    "image_only": ["planner.energy.proprio_weight=0.0"],
    "colors": ["env.variation=colors"],
    "lighting": ["env.variation=lighting"],
    "distractors": ["env.variation=distractors"],
    "texture": ["env.variation=texture"],
    "camera": ["env.variation=camera"],
    "random": [],
    "simulator": [],
}


def evaluate_shard(
    row: str, args: argparse.Namespace, first: int, count: int, threads: int | None = None
) -> list[EpisodeRecord]:
    """Episodes first..first+count-1 of a row (seeds `evaluate.seed + first`...) on `threads` torch
    threads (None: the default); shard 0 writes the GIFs and shows the progress bar."""
    if threads is not None:
        torch.set_num_threads(threads)
    cfg = apply_overrides(load_preset(args.config), [*args.overrides, *ROWS[row]])
    make_env = env_factory(cfg["env"])
    probe = make_env()
    space = probe.action_space
    probe.close()
    if row in BASELINES:
        policy = baseline_policy(row, cfg["planner"], cfg["evaluate"], make_env, space)
    else:
        wm = cfg["world_model"]
        model = ACWorldModel.load(args.model, device=wm["train"]["device"], precision=wm["precision"])
        policy = world_model_agent(model, cfg["planner"], space)
    report = evaluate(
        make_env,
        policy,
        episodes=count,
        seed=cfg["evaluate"]["seed"] + first,
        gif_dir=Path(args.out) / row if first == 0 else None,
        gif_episodes=2,
        progress=first == 0,
        subgoal_steps=cfg["evaluate"]["subgoal_steps"],
    )
    return report.episodes


def run_row(row: str, args: argparse.Namespace) -> dict:
    """A row's episodes, split into `args.workers` processes of consecutive seeds, merged in seed order."""
    tic = time.perf_counter()
    cfg = apply_overrides(load_preset(args.config), [*args.overrides, *ROWS[row]])
    sizes = [len(part) for part in np.array_split(np.arange(args.episodes), args.workers) if len(part)]
    gif_dir = Path(args.out) / row
    if len(sizes) == 1:
        episodes, threads = evaluate_shard(row, args, 0, args.episodes), torch.get_num_threads()
    else:
        threads = max(1, (os.cpu_count() or 1) // len(sizes))
        firsts = [0, *itertools.accumulate(sizes[:-1])]
        with ProcessPoolExecutor(len(sizes), mp_context=multiprocessing.get_context("spawn")) as pool:
            shards = pool.map(
                evaluate_shard, [row] * len(sizes), [args] * len(sizes), firsts, sizes, [threads] * len(sizes)
            )
            episodes = [episode for shard in shards for episode in shard]
        # over every shard's episodes (shard 0's own plot holds only its own)
        plot_episodes(
            [e.distances for e in episodes], [e.successes for e in episodes], gif_dir / "episodes.png"
        )
    report = summarise(episodes)
    low, high = report.success_ci95
    result = {
        "row": row,
        "variation": cfg["env"]["variation"],
        "episodes": args.episodes,
        "success": report.success_rate,
        "ci95": [low, high],
        "final_distance": report.mean_final_distance,
        "plan_time_mean": report.plan_time_mean,
        "failed_seeds": [e.seed for e in episodes if not e.success],  # to replay them
        "lost_seeds": [e.seed for e in episodes if not e.success and any(e.successes)],  # success, then not
        "wall_seconds": time.perf_counter() - tic,
        "workers": len(sizes),
        "threads": threads,
    }
    gif_dir.mkdir(parents=True, exist_ok=True)
    (gif_dir / "report.json").write_text(json.dumps(result, indent=1))
    return result


def print_table(out: Path) -> None:
    print("| row | scene | episodes | success (95 % CI) | final distance | s / re-plan |")
    print("| --- | --- | ---: | --- | ---: | ---: |")
    for path in sorted(out.glob("*/report.json")):
        r = json.loads(path.read_text())
        plan = f"{r['plan_time_mean']:.2f}" if r["plan_time_mean"] is not None else "-"
        low, high = r["ci95"]
        print(
            f"| {r['row']} | {r['variation']} | {r['episodes']} | {r['success']:.0%} ({low:.0%}-{high:.0%}) "
            f"| {r['final_distance']:.4f} | {plan} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a world model folder (written by posttrain)")
    parser.add_argument("--config", "-c", default="wm_arm_reach", help="preset the model was trained with")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--rows", nargs="+", default=["world_model", "random"], choices=list(ROWS))
    parser.add_argument("--out", default="runs/bench/planning_table")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes per row (consecutive seeds each, torch threads shared)",
    )
    parser.add_argument("overrides", nargs="*", help="preset overrides for every row")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    for row in args.rows:
        result = run_row(row, args)
        print(json.dumps(result))
    print_table(Path(args.out))


if __name__ == "__main__":
    main()
