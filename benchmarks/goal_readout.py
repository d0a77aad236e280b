"""How far off is the goal state that a world model's state readout reads from goal images?

Under the planning protocol the planner's goal state is the readout's estimate from the goal image
(`worldjepa.nn.state_readout`), so this error is a floor under the final distance it can reach. For each
episode of a seed split (the model's training seeds are checked first), the env's goal image goes
through the readout and is compared with the simulator's goal state, which only this measurement sees.
Also reported: the same on the episode's first frame, a training-like image (goal images are poses at
the edge of what the data covers). A pair readout (`state_readout.pair`) reads every image relative to the
episode's first frame and the arm's state there, as the agent's first re-plan does (its first-frame error
is then the error of reading no change).

    python benchmarks/goal_readout.py --model checkpoints/arm_reach --split test --episodes 50 [env.variation=colors]

Arm worlds: the error of the grasp point (the state's first three values), in cm.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from worldjepa.planning.ac_world_model import ACWorldModel
from worldjepa.presets import SPLIT_SEEDS, WorldModelPreset, load_config
from worldjepa.stages.evaluate import check_world_model


def as_batch(observation: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(observation[k]))[None] for k in ("pixels", "state")}


def grasp_error_cm(
    world_model: ACWorldModel, observation: dict[str, np.ndarray], start: dict[str, np.ndarray]
) -> float:
    reference = as_batch(start) if world_model.goal_state_follows_current else None
    read = world_model.read_state(as_batch(observation)["pixels"], reference)[0, :3].cpu().numpy()
    return float(100 * np.linalg.norm(read - observation["state"][:3]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", "-c", default="wm_arm_reach")
    parser.add_argument("--model", required=True)
    parser.add_argument("--split", choices=list(SPLIT_SEEDS), default="test")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("overrides", nargs="*", help="preset overrides (e.g. env.variation=colors)")
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides, WorldModelPreset)
    world_model = ACWorldModel.load(args.model)
    if world_model.state_readout is None:
        raise SystemExit(f"{args.model} has no state readout")
    check_world_model(world_model, cfg, None)
    env = cfg.env.make()
    goal_errors, start_errors = [], []
    for seed in range(SPLIT_SEEDS[args.split], SPLIT_SEEDS[args.split] + args.episodes):
        start, _ = env.reset(seed=seed)
        goal_errors.append(grasp_error_cm(world_model, env.unwrapped.goal_observation(), start))
        start_errors.append(grasp_error_cm(world_model, start, start))
    env.close()
    summary = {
        "model": args.model,
        "split": args.split,
        "variation": cfg.env.variation,
        "episodes": args.episodes,
        **{
            f"{name}_cm": {
                "mean": float(np.mean(e)),
                "median": float(np.median(e)),
                "p90": float(np.percentile(e, 90)),
            }
            for name, e in (("goal_image", goal_errors), ("first_frame", start_errors))
        },
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
