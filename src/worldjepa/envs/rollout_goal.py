"""Goal images for any Gymnasium env: the frame a few random steps ahead of the episode's start.

A generic env (`GymPixelsAdapter`) has no goal. `RolloutGoal` gives it one the way DINO-WM and LeWM
build their goals: from the start state, roll `goal_steps` random actions (seeded by the episode's seed),
and the observation reached is the goal; the env is then reset to the same start (same seed, so the env
must reset deterministically). `info["distance"]` is the Euclidean distance between the current and the
goal `state` vectors, `info["success"]` that distance below `threshold`. The planner still receives only
the goal image (`goal_observation()["pixels"]`); the state is for scoring and privileged references.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from worldjepa.envs.base import GoalEnv
from worldjepa.errors import UserError


class RolloutGoal(gym.Env, GoalEnv):
    """An env with pixels + state observations (e.g. `GymPixelsAdapter`) given a reachable goal. It is the
    outermost env itself (not a `gym.Wrapper`), so `env.unwrapped` finds its goal."""

    success_criterion = "the state vector within `threshold` (Euclidean) of the goal's"

    def __init__(self, env: gym.Env, goal_steps: int = 25, threshold: float = 0.1) -> None:
        self.env, self.spec = env, env.spec
        self.observation_space, self.action_space = env.observation_space, env.action_space
        if goal_steps < 1 or threshold <= 0:
            raise UserError(f"goal_steps must be >= 1 and threshold > 0, got {goal_steps} and {threshold}")
        if env.observation_space["state"].shape[0] == 0:
            raise UserError("a rollout goal needs a state vector to score success; this env has none")
        self.goal_steps, self.threshold = goal_steps, threshold
        self.goal: dict[str, np.ndarray] | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.env.reset(seed=seed, options=options)
        rng = np.random.default_rng(seed)
        space = self.env.action_space
        for _ in range(self.goal_steps):
            obs, *_ = self.env.step(rng.uniform(space.low, space.high).astype(np.float32))
        self.goal = {"pixels": obs["pixels"].copy(), "state": obs["state"].copy()}
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, self._score(obs, info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._score(obs, info)

    def _score(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> dict[str, Any]:
        distance = float(np.linalg.norm(obs["state"] - self.goal["state"]))
        return {**info, "distance": distance, "success": distance < self.threshold}

    def render(self) -> np.ndarray:
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    def goal_observation(self) -> dict[str, np.ndarray]:
        if self.goal is None:
            raise UserError("reset the env before asking for its goal")
        return {key: value.copy() for key, value in self.goal.items()}
