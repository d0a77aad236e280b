"""The contract every worldjepa world follows, so that data collection, world models and planners
never need to know an environment's internals.

A worldjepa env is a `gymnasium.Env` with:
- `observation_space`: `Dict(pixels=Box(0, 255, (H, W, 3), uint8), state=Box(-inf, inf, (S,), float32))`;
- `action_space`: `Box(low, high, (A,), float32)`; actions outside the bounds are clipped, a wrong shape
  or a non-finite value raises `worldjepa.errors.UserError`;
- `reset(seed=...)` deterministic: the same seed gives the same start, goal and frames;
- `info` from `reset` and `step` holds `success` (bool) and `distance` (float, the task's success metric);
- the methods of `GoalEnv` below.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from worldjepa.errors import UserError


def check_action(action: Any, space: gym.spaces.Box, layout: str = "") -> np.ndarray:
    """The contract's action rule: wrong shape or non-finite -> UserError, out of bounds -> clipped.

    `layout` names the action's entries in the error message, e.g. "[dx, dy, dz, gripper]".
    """
    a = np.asarray(action, dtype=np.float32)
    if a.shape != space.shape:
        named = f" = {layout}" if layout else ""
        raise UserError(f"action must have shape {space.shape}{named}, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise UserError(f"action must be finite, got {a.tolist()}")
    return np.clip(a, space.low, space.high)


class GoalEnv:
    """Mixin: what a goal-conditioned worldjepa env offers beyond the Gymnasium API."""

    #: Plain-language success criterion, shown in docs and evaluation reports.
    success_criterion: str = ""
    #: Values of `object_state` (0: the env reports no objects).
    object_dim: int = 0

    def object_state(self) -> np.ndarray:
        """The simulator's state of the scene's objects [object_dim] (NaN where it has none): recorded with
        the episodes to fit the modules that read objects from images, never given to a planner."""
        return np.zeros(0, np.float32)

    def goal_observation(self) -> dict[str, np.ndarray]:
        """The observation (`pixels`, `state`) of the scene in its goal configuration for this episode."""
        raise NotImplementedError

    def subgoal_observations(self) -> list[dict[str, np.ndarray]]:
        """Visual sub-goals of a multi-stage task (V-JEPA 2-AC's recipe for long-horizon tasks): the
        observations of the configurations an episode passes through, in order, ending with the goal.
        Computed from the episode's start, so call it right after `reset`. Default: just the goal."""
        return [self.goal_observation()]

    def expert_action(self, rng: np.random.Generator | None = None, noise: float = 0.0) -> np.ndarray:
        """A scripted controller's action toward the goal, with optional Gaussian noise (scale in
        action units) drawn from `rng`; used for data collection and to prove the task is solvable."""
        raise NotImplementedError

    def get_sim_state(self) -> Any:
        """A snapshot of the full simulator state (for the true-simulator planning baseline)."""
        raise NotImplementedError

    def set_sim_state(self, state: Any) -> None:
        """Restore a snapshot taken with `get_sim_state`."""
        raise NotImplementedError
