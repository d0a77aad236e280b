"""The closed-loop evaluation table of the README: one saved world model, several rows (the preset's
planner, the image-only V-JEPA 2-AC energy, the final goal image without sub-goals, unseen scene
variations, the true simulator as the model (toward the goal state, or with the model's encoder toward
the goal image: `true_dynamics`), random actions), N episodes each from seeds that the training data
never used.

    python benchmarks/planning_table.py --model checkpoints/arm_reach --episodes 50 [key.sub=value ...] \
        --rows world_model image_only random privileged_goal_state simulator colors lighting distractors

Rows run on the test seeds (the README's tables) unless `--split validation` (every tuning run); the seeds
of both splits are checked against the model's training seeds on every run.

Every row runs through `worldjepa evaluate`'s own code (`worldjepa.stages.evaluate.run_row`) and writes
the same `<out>/<row>/report.json`; the table printed at the end reads every report under `--out`, so
rows can be run by several processes side by side and merged. `--workers N` splits each row's episodes
over N processes (consecutive seeds, merged in order). Preset overrides (`key.sub=value`) apply to
every row after the row's own, e.g. `planner.horizon=5` (or `planner.action_cost=0.01` on the image-only row).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from worldjepa.eval.closed_loop import EpisodeRecord, summarise
from worldjepa.presets import WorldModelPreset, load_config
from worldjepa.stages.evaluate import BASELINES, REPORT, WORLD_MODEL, run_row

#: Rows: the overrides they add to the preset. `final_goal_only` plans a multi-stage task toward the goal image
#: alone, without its sub-goal images. Variation rows plan in a scene the model never saw;
#: `privileged_goal_state` and `simulator` are references that see the simulator's goal state, `true_dynamics`
#: one that sees the simulator's dynamics. V-JEPA 2-AC's energy has no control cost: the image-only row drops
#: the preset's (`true_dynamics` drops it itself).
ROWS = {
    "world_model": [],
    "image_only": [
        "planner.energy.proprio_weight=0.0",
        "planner.energy.visual_weight=1.0",
        "planner.action_cost=0.0",
    ],
    "final_goal_only": ["planner.subgoal_steps=[]"],
    "privileged_goal_state": [],
    "colors": ["env.variation=colors"],
    "lighting": ["env.variation=lighting"],
    "distractors": ["env.variation=distractors"],
    "texture": ["env.variation=texture"],
    "camera": ["env.variation=camera"],
    "random": [],
    "simulator": [],
    "true_dynamics": [],
}


def print_table(out: Path) -> None:
    """Every report under `out` as a Markdown table; success is asked at the end of the episode, "reached"
    at any step (the harnesses that stop at the first success), both recounted from the episodes."""
    print(
        "| row | protocol | scene | seeds | episodes | success (95 % CI) | reached (95 % CI) | final distance | s / re-plan |"
    )
    print("| --- | --- | --- | --- | ---: | --- | --- | ---: | ---: |")
    for path in sorted(out.glob(f"*/{REPORT}")):
        r = json.loads(path.read_text())
        report = summarise([EpisodeRecord(**episode) for episode in r["episodes"]])
        plan = f"{r['plan_time_mean']:.2f}" if r["plan_time_mean"] is not None else "-"
        (low, high), (reached_low, reached_high) = report.success_ci95, report.reached_ci95
        print(
            f"| {r['row']} | {r['protocol']} | {r['variation']} | {r['split']} | {len(r['episodes'])} | "
            f"{report.success_rate:.0%} ({low:.0%}-{high:.0%}) | {report.reached_rate:.0%} "
            f"({reached_low:.0%}-{reached_high:.0%}) | {report.mean_final_distance:.4f} | {plan} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a world model folder (written by posttrain)")
    parser.add_argument("--config", "-c", default="wm_arm_reach", help="preset the model was trained with")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--rows", nargs="+", default=["world_model", "random"], choices=list(ROWS))
    parser.add_argument("--out", default="runs/bench/planning_table")
    parser.add_argument(
        "--split", choices=["test", "validation"], default="test", help="seed range (default test)"
    )
    parser.add_argument(
        "--data", default=None, help="the model's training trajectories (older model folders)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes per row (consecutive seeds each, threads shared)"
    )
    parser.add_argument("overrides", nargs="*", help="preset overrides for every row")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    for row in args.rows:
        overrides = [
            *ROWS[row],
            *args.overrides,
            f"evaluate.episodes={args.episodes}",
            f"evaluate.split={args.split}",
            "evaluate.gif_episodes=2",
        ]
        cfg = load_config(args.config, overrides, WorldModelPreset)
        policy = row if row in BASELINES else WORLD_MODEL  # scene rows: the world model in another scene
        report = run_row(policy, cfg, args.out, args.model, args.workers, name=row, trajectories=args.data)
        print(json.dumps({k: v for k, v in report.items() if k != "episodes"}))
    print_table(Path(args.out))


if __name__ == "__main__":
    main()
