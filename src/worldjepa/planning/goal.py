"""What a planner may know about the goal: worldjepa's planning protocol, as types.

A planner receives the current camera image, the robot's own proprioception (its `state`) and goal
IMAGES: one, or an ordered list of sub-goal images ending with the goal, as V-JEPA 2-AC is given by its
operator. Nothing from the simulator about the goal. A world model that wants a goal state for its
energy estimates it from the goal image with a learned module (`ACWorldModel.encode_goal`).

`PrivilegedGoal` adds the simulator's goal state. It exists for reference rows only (DINO-WM-style
energies, the true-simulator planner), which reports label "privileged"; it is never a headline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from worldjepa.errors import UserError


@dataclass(frozen=True, eq=False)
class GoalImage:
    """A picture of the goal (or of a sub-goal): uint8 [H, W, 3]."""

    image: np.ndarray

    def __post_init__(self) -> None:
        if self.image.dtype != np.uint8 or self.image.ndim != 3 or self.image.shape[-1] != 3:
            raise UserError(
                f"a goal image must be uint8 [H, W, 3], got {self.image.dtype} {list(self.image.shape)}"
            )


@dataclass(frozen=True, eq=False)
class PrivilegedGoal(GoalImage):
    """A goal image with the simulator's goal state: reference rows only, labelled privileged."""

    state: np.ndarray


Goal = GoalImage | PrivilegedGoal


def goals_from_observations(observations: Sequence[Mapping[str, np.ndarray]], privileged: bool) -> list[Goal]:
    """Env goal observations (`pixels`, `state`) as what a planner may see: their images, and their states
    only for a privileged reference row."""
    if privileged:
        return [
            PrivilegedGoal(np.asarray(o["pixels"]), np.asarray(o["state"], np.float32)) for o in observations
        ]
    return [GoalImage(np.asarray(o["pixels"])) for o in observations]
