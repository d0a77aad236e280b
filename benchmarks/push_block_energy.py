"""Would an energy that sees the block make Push correct a drifting block? A privileged upper bound.

Push plans toward sub-goal pictures on a fixed schedule and fails when the pushed block drifts off the
line the pictures were drawn on (docs/results.md). The obvious remedy is block feedback in the energy: read
the block's position from each picture, predict how the candidate actions move it, and score its distance
to where the sub-goal shows it. This asks whether that remedy works before anyone builds the readouts:
it gives the planner the simulator's state of the hand AND the block (privileged: the block's true
position and yaw now and in every sub-goal), predicts their change with a learned state head
(`ProprioHead` on [7-D proprio, block x, y, cos 4 yaw, sin 4 yaw], fitted with `fit_proprio_head` on
transitions of the preset's collection mix), and plans with the preset's planner and schedule, the energy
weighing the hand's and the block's distance to each sub-goal (no image term). The block weight 0 row is
the same planner without block feedback.

    python benchmarks/push_block_energy.py --episodes 50 --block-weights 0 0.3 1 3

Preset overrides go before `--block-weights` (or after `--`): `... --episodes 50 planner.horizon=5
--block-weights 0 1`.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import torch

os.environ.setdefault("MUJOCO_GL", "egl")

from worldjepa.eval.closed_loop import wilson_interval  # noqa: E402
from worldjepa.methods.proprio_fit import ProprioFitConfig, episode_transitions, fit_proprio_head  # noqa: E402
from worldjepa.nn.proprio_head import ProprioHead, unroll_states  # noqa: E402
from worldjepa.planning.agent import build_agent  # noqa: E402
from worldjepa.planning.goal import PrivilegedGoal  # noqa: E402
from worldjepa.planning.world_model import Latent  # noqa: E402
from worldjepa.presets import SPLIT_SEEDS, WorldModelPreset, load_config  # noqa: E402
from worldjepa.stages.collect import episode_plan, run_episode  # noqa: E402

#: The hand's values of the 7-D proprio state that the energy weighs (x, y, z; not its angles or fingers).
HAND = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def block_state(arm) -> np.ndarray:
    """The block's x, y and its yaw as cos / sin of 4 yaw (a square block looks alike every quarter turn)."""
    w, _, _, z = arm.data.qpos[arm._block_qpos + 3 : arm._block_qpos + 7]
    yaw = 2.0 * np.arctan2(z, w)
    return np.array([*arm.block_position[:2], np.cos(4 * yaw), np.sin(4 * yaw)], np.float32)


class WithBlockState(gym.ObservationWrapper):
    """Observations whose `state` is the proprio state followed by the block's (`block_state`)."""

    def observation(self, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**observation, "state": np.concatenate([observation["state"], block_state(self.unwrapped)])}


class StateWorldModel:
    """A world model whose latent is the simulator state, rolled forward by a learned state head."""

    device = torch.device("cpu")

    def __init__(self, head: ProprioHead) -> None:
        self.head, self.action_dim = head, head.action_dim

    def encode(self, obs: dict[str, torch.Tensor]) -> Latent:
        return Latent(obs["state"].new_zeros(len(obs["state"]), 1, 1), obs["state"].float())

    def encode_goal(self, goal: PrivilegedGoal) -> Latent:
        return Latent(torch.zeros(1, 1, 1), torch.as_tensor(goal.state)[None])

    def unroll(self, latent: Latent, actions: torch.Tensor) -> Latent:
        states = unroll_states(self.head, latent.proprio.expand(len(actions), -1), actions)[:, 1:]
        return Latent(states.new_zeros(*states.shape[:2], 1, 1), states)


def subgoal_states(env: gym.Env) -> list[np.ndarray]:
    """The state (proprio and block) of every sub-goal the env renders, the goal last."""
    arm, states = env.unwrapped, []
    for pose in arm._subgoal_poses():
        snapshot = arm.get_sim_state()
        pose()
        mujoco.mj_forward(arm.model, arm.data)
        states.append(np.concatenate([arm._observation()["state"], block_state(arm)]))
        arm.set_sim_state(snapshot)
    return states


def fitted_head(cfg: WorldModelPreset, env: gym.Env, episodes: int, cache: Path) -> ProprioHead:
    """The state head fitted on `episodes` episodes of the preset's collection mix (recorded once, kept in
    `cache`), one env action per move, applied frame-skip times per model step."""
    if not cache.exists():
        recorded = [
            run_episode(
                env,
                *episode_plan(cfg.collect.seed, e, "mix", cfg.collect.expert_fraction),
                noise=cfg.collect.noise,
            )  # fmt: skip
            for e in range(episodes)
        ]
        np.savez(
            cache,
            states=np.stack([r["states"] for r in recorded]),
            actions=np.stack([r["actions"] for r in recorded]),
        )
    data = np.load(cache)
    parts = [
        episode_transitions(torch.from_numpy(s), torch.from_numpy(a), 1)
        for s, a in zip(data["states"], data["actions"], strict=True)
    ]
    states, actions, after = (torch.cat(part) for part in zip(*parts, strict=True))
    skip = cfg.world_model.frame_skip
    head = ProprioHead(states.shape[1], actions.shape[1] * skip, 256, 3, moves=skip)
    errors = fit_proprio_head(head, states, actions, after, ProprioFitConfig(steps=16000), "cpu", False)
    print(f"state head fitted on {len(states)} transitions; held-out error {errors}")
    return head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=list(SPLIT_SEEDS), default="validation")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--block-weights", type=float, nargs="+", default=[0.0, 1.0, 3.0])
    parser.add_argument("--collect", type=int, default=600, help="episodes to fit the state head on")
    parser.add_argument("--cache", default="runs/push_block_states.npz", help="the recorded states, kept")
    parser.add_argument("overrides", nargs="*", help="preset overrides, e.g. planner.horizon=5")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config("wm_arm_push", args.overrides, WorldModelPreset)
    env = WithBlockState(cfg.env.make())
    head = fitted_head(cfg, env, args.collect, Path(args.cache))
    first = SPLIT_SEEDS[args.split]
    for weight in args.block_weights:
        cfg.planner.energy.state_weights = [*HAND, weight, weight, 0.0, 0.0]
        agent = build_agent(StateWorldModel(head), cfg.planner, env.action_space)
        tic, results = time.perf_counter(), []
        for seed in range(first, first + args.episodes):
            observation, _ = env.reset(seed=seed)
            goals = [PrivilegedGoal(observation["pixels"], state) for state in subgoal_states(env)]
            agent.reset(goals, steps=env.spec.max_episode_steps)
            for _ in range(env.spec.max_episode_steps):
                observation, _, _, _, info = env.step(agent.act(observation))
            results.append((info["success"], info["distance"]))
        wins = sum(success for success, _ in results)
        low, high = wilson_interval(wins, len(results))
        print(
            f"block weight {weight:g}: {wins}/{len(results)} "
            f"({wins / len(results):.0%}; {low:.0%}-{high:.0%}), "
            f"final distance {100 * np.mean([d for _, d in results]):.1f} cm, {args.split} seeds, "
            f"{time.perf_counter() - tic:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
