"""The closed-loop evaluation table of the README: one saved world model, several rows (the preset's
planner, the image-only V-JEPA 2-AC energy, unseen scene variations, the true simulator as the
model, random actions), N episodes each from seeds that the training data never used.

    python benchmarks/planning_table.py --model checkpoints/arm_reach --episodes 50 [key.sub=value ...] \
        --rows world_model image_only random simulator colors lighting distractors

Each row writes `<out>/<row>/report.json`; the table printed at the end reads every report under
`--out`, so rows can be run by several processes side by side (one torch thread each) and merged.
Preset overrides (`key.sub=value`) apply to every row, e.g. `env.id=worldjepa/TwoRooms-v0`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from worldjepa.config import apply_overrides, load_preset
from worldjepa.eval.closed_loop import evaluate
from worldjepa.evaluate import BASELINES, baseline_policy, env_factory, world_model_agent
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


def run_row(row: str, args: argparse.Namespace) -> dict:
    cfg = apply_overrides(load_preset(args.config), [*args.overrides, *ROWS[row]])
    make_env = env_factory(cfg["env"])
    gif_dir = Path(args.out) / row
    common = {
        "episodes": args.episodes,
        "seed": cfg["evaluate"]["seed"],
        "gif_dir": gif_dir,
        "gif_episodes": 2,
        "subgoal_steps": cfg["evaluate"]["subgoal_steps"],
    }
    probe = make_env()
    space = probe.action_space
    probe.close()
    tic = time.perf_counter()
    if row in BASELINES:
        policy = baseline_policy(row, cfg["planner"], cfg["evaluate"], make_env, space)
    else:
        wm = cfg["world_model"]
        model = ACWorldModel.load(args.model, device=wm["train"]["device"], precision=wm["precision"])
        policy = world_model_agent(model, cfg["planner"], space)
    report = evaluate(make_env, policy, **common)
    low, high = report.success_ci95
    result = {
        "row": row,
        "variation": cfg["env"]["variation"],
        "episodes": args.episodes,
        "success": report.success_rate,
        "ci95": [low, high],
        "final_distance": report.mean_final_distance,
        "plan_time_mean": report.plan_time_mean,
        "failed_seeds": [e.seed for e in report.episodes if not e.success],  # to replay them
        "wall_seconds": time.perf_counter() - tic,
        "threads": torch.get_num_threads(),
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
    parser.add_argument("overrides", nargs="*", help="preset overrides for every row")
    args = parser.parse_args()
    for row in args.rows:
        result = run_row(row, args)
        print(json.dumps(result))
    print_table(Path(args.out))


if __name__ == "__main__":
    main()
