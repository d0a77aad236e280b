"""How far do a multi-stage task's sub-goal pictures lead when followed perfectly? An open-loop ceiling.

The arm presets plan toward sub-goal images on a fixed schedule (`planner.subgoal_steps`). This replaces
the world model, the state readout and the planner by an ideal follower of what the pictures show: at each
env step the hand moves straight toward the TRUE grasp point of the current sub-goal, as fast as the
preset's planner bounds allow, and the gripper takes the command the sub-goal's finger opening shows
(closed under `CLOSED_BELOW`), clipped to the same bounds. What it fails is the sub-goals' doing (where
they put the hand, on what schedule), not the model's: the follower never looks at the block. A reference
row for the multi-stage tables, labelled privileged (it reads the simulator's hand states).

`--demo-every K` asks instead what a recorded demonstration's frames would give as sub-goals: the scripted
expert runs the episode first from the same reset, its actions clipped to the planner's bounds, and the
follower then heads at each step for the hand position the demonstration had at the end of the current
K-step stretch, a sub-goal every K steps and its last frame as the goal (the preset's schedule is not used).

    python benchmarks/subgoal_follower.py -c wm_arm_push --split test --episodes 50
    python benchmarks/subgoal_follower.py -c wm_arm_push --split validation --episodes 20 --demo-every 4
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from worldjepa.envs.arm import MAX_STEP  # noqa: E402
from worldjepa.eval.closed_loop import wilson_interval  # noqa: E402
from worldjepa.planning.planner_config import action_bounds  # noqa: E402
from worldjepa.presets import SPLIT_SEEDS, WorldModelPreset, load_config  # noqa: E402

#: Finger opening (m) under which a sub-goal shows a closed hand: 6 cm on the block, wider when open.
CLOSED_BELOW = 0.07


def demonstration(env, low: np.ndarray, high: np.ndarray, seed: int) -> tuple[list[np.ndarray], bool]:
    """The scripted expert's episode from `seed`'s reset, its actions clipped to the bounds: the state
    after every step, and whether it succeeded."""
    env.reset(seed=seed)
    states = []
    for _ in range(env.spec.max_episode_steps):
        observation, *_, info = env.step(np.clip(env.unwrapped.expert_action(), low, high).astype(np.float32))
        states.append(observation["state"])
    return states, bool(info["success"])


def follow(
    env, states: list[np.ndarray], subgoal_steps: list[int], low: np.ndarray, high: np.ndarray, seed: int
) -> tuple[bool, float]:
    """One episode of the ideal follower of sub-goal `states` on the schedule `subgoal_steps` (one step
    count per state but the last, which it heads for the rest): (success at the end, final distance)."""
    env.reset(seed=seed)
    arm = env.unwrapped
    switches = np.cumsum(subgoal_steps)
    for step in range(env.spec.max_episode_steps):
        target = states[int(np.searchsorted(switches, step, side="right"))]
        gripper = -1.0 if target[6] < CLOSED_BELOW else 1.0
        action = np.append((target[:3] - arm.grasp_point) / MAX_STEP, gripper)
        *_, info = env.step(np.clip(action, low, high).astype(np.float32))
    return bool(info["success"]), float(info["distance"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-c", default="wm_arm_push", help="a multi-stage arm preset")
    parser.add_argument("--split", choices=list(SPLIT_SEEDS), default="test")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--demo-every", type=int, help="sub-goals: a demonstration's states every K steps")
    parser.add_argument("overrides", nargs="*", help="preset overrides, e.g. planner.subgoal_steps=[...]")
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides, WorldModelPreset)
    if not cfg.planner.subgoal_steps:
        parser.error(f"{args.config} plans toward one goal image: it has no sub-goals to follow")
    env = cfg.env.make()
    low, high = (bound.numpy() for bound in action_bounds(env.action_space, cfg.planner.action_low,
                                                          cfg.planner.action_high))  # fmt: skip
    first = SPLIT_SEEDS[args.split]
    results, demos_won = [], 0
    for seed in range(first, first + args.episodes):
        if args.demo_every:
            demo, won = demonstration(env, low, high, seed)
            ends = sorted({*range(args.demo_every - 1, len(demo), args.demo_every), len(demo) - 1})
            states = [demo[i] for i in ends]
            demos_won += won
            schedule = [args.demo_every] * (len(states) - 1)
        else:
            env.reset(seed=seed)
            states = [o["state"] for o in env.unwrapped.subgoal_observations()]
            schedule = cfg.planner.subgoal_steps
        results.append(follow(env, states, schedule, low, high, seed))
    wins = sum(success for success, _ in results)
    ci_low, ci_high = wilson_interval(wins, len(results))
    failed = [first + i for i, (success, _) in enumerate(results) if not success]
    print(
        (f"the demonstrations succeed in {demos_won}/{len(results)}; " if args.demo_every else "")
        + f"{cfg.env.id}, {args.split} seeds, ideal follower of the sub-goals' hand states: "
        f"{wins / len(results):.0%} ({wins}/{len(results)}; {ci_low:.0%}-{ci_high:.0%}), mean final distance "
        f"{100 * np.mean([d for _, d in results]):.1f} cm; failed seeds {failed}"
    )


if __name__ == "__main__":
    main()
