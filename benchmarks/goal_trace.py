"""Where does a planning episode's goal estimate go wrong? Trace it along closed-loop episodes of an arm world.

Under the planning protocol the agent reads the goal state from the goal image at every re-plan and pools
the reads (`planner.goal_read_scale`). This runs the world model's own agent, as `planning_table.py`
does, and records at each re-plan how far the raw read and the pooled estimate are from the simulator's
goal state (which only this measurement sees) and how far the arm is. For each episode it also splits the
final offset of the grasp point from the goal into its part along the camera's line of sight and across
it: a single 64 px camera sees depth least, so an arm that stops where the readout sees no change tends
to stop off along that line.

    python benchmarks/goal_trace.py --model runs/rl27/world_model --split validation --episodes 20 \
        env.variation=lighting [--every 5]

Arm worlds (the grasp point is the state's first three values), in cm.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from worldjepa.envs.arm_scene import CAMERA_POSITION, CAMERA_TARGET
from worldjepa.envs.variations import PRESETS
from worldjepa.eval.closed_loop import evaluate
from worldjepa.presets import SPLIT_SEEDS, WorldModelPreset, load_config
from worldjepa.stages.evaluate import WORLD_MODEL, row_policy


def line_of_sight(variation: str | None) -> np.ndarray:
    """Unit vector from the camera of a scene variation to the point it looks at."""
    position = CAMERA_POSITION + np.asarray(PRESETS[variation or "default"].camera_shift)
    return (CAMERA_TARGET - position) / np.linalg.norm(CAMERA_TARGET - position)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", "-c", default="wm_arm_reach")
    parser.add_argument("--model", required=True)
    parser.add_argument("--split", choices=list(SPLIT_SEEDS), default="validation")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--every", type=int, default=5, help="print every n-th re-plan of each episode")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="preset overrides (e.g. env.variation=lighting)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides, WorldModelPreset)
    probe = cfg.env.make()
    action_space = probe.action_space
    agent = row_policy(WORLD_MODEL, cfg, args.model, action_space)  # checks the seeds against its training
    # Each re-plan reads the goal once (the world model's encode_goal) and pools it (the agent's
    # _goal_latent): record both as they happen, so the trace costs no extra read.
    encode_goal, pool_goal = agent.world_model.encode_goal, agent._goal_latent
    raw: list[np.ndarray] = []
    trace: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def read(*args, **kwargs):
        goal = encode_goal(*args, **kwargs)
        raw.append(goal.proprio[0, :3].cpu().numpy())
        return goal

    def pooled(batch: dict[str, torch.Tensor]):
        goal = pool_goal(batch)
        trace.append((raw[-1], goal.proprio[0, :3].cpu().numpy(), batch["state"][0, :3].numpy()))
        return goal

    agent.world_model.encode_goal, agent._goal_latent = read, pooled
    view = line_of_sight(cfg.env.variation)
    offsets, failed = [], []
    print("re-plan triples: (raw read, pooled estimate, arm), each its distance to the true goal in cm")
    for seed in range(SPLIT_SEEDS[args.split], SPLIT_SEEDS[args.split] + args.episodes):
        probe.reset(seed=seed)
        goal = probe.unwrapped.goal_observation()["state"][:3]
        raw.clear(), trace.clear()
        episode = evaluate(cfg.env.make, agent, episodes=1, seed=seed, progress=False).episodes[0]
        cm = [tuple(100 * np.linalg.norm(value - goal) for value in row) for row in trace]
        offset = 100 * (goal - trace[-1][2])
        along = float(offset @ view)
        across = float(np.linalg.norm(offset - along * view))
        offsets.append((abs(along), across))
        failed.append(not episode.success)
        print(f"seed {seed} {'success' if episode.success else 'FAILED '} final {100 * episode.final_distance:.1f} cm, "
              f"last offset along the line of sight {along:+.1f} cm, across {across:.1f} cm")  # fmt: skip
        print("   ", " ".join(f"({a:.1f}, {b:.1f}, {c:.1f})" for a, b, c in cm[:: args.every]), flush=True)
    probe.close()
    offsets, failed = np.array(offsets), np.array(failed)
    for name, rows in (("all", offsets), ("failed", offsets[failed])):
        if len(rows):
            along, across = rows.mean(axis=0)
            print(
                f"{len(rows)} {name}: mean |offset| along the line of sight {along:.2f} cm, across {across:.2f} cm"
            )


if __name__ == "__main__":
    main()
