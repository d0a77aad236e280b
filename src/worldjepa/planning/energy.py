"""The goal energy: how far the predicted embeddings are from the goal image's embedding.

V-JEPA 2-AC plans by minimising the mean L1 distance between the predicted final frame embedding and
the goal embedding; that is the default here. Options: mean squared distance ("l2", the DINO-WM
objective), a sum over every predicted step instead of the last one only (rewards reaching the goal
early), and a weighted proprioceptive term when the latent carries the robot's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from worldjepa.errors import UserError
from worldjepa.planning.world_model import Latent


def _distance(pred: Tensor, goal: Tensor, metric: str, keep_dims: int) -> Tensor:
    """Mean distance over every dimension after the first `keep_dims` (which are kept)."""
    diff = pred - goal
    per_element = diff.abs() if metric == "l1" else diff.square()
    return per_element.flatten(keep_dims).mean(-1)


@dataclass
class GoalEnergy:
    """Energy of candidate trajectories: lower is closer to the goal.

    metric: "l1" = mean absolute difference (V-JEPA 2-AC); "l2" = mean squared difference.
    steps: "last" scores the final predicted frame only (V-JEPA 2-AC); "sum" adds every step.
    proprio_weight: weight of the same distance on the proprio part (0 ignores it).
    visual_weight: weight of the image term (0: the state alone, for a world model whose state carries
        what the task needs, such as one that tracks the pushed block).
    state_weights: how much each state dimension counts in that distance (None: all alike), e.g. the arm's
        gripper opening (a 2.4 cm swing, where the hand travels tens of cm) made to count as much as a move.
    """

    metric: Literal["l1", "l2"] = "l1"
    steps: Literal["last", "sum"] = "last"
    proprio_weight: float = 0.0
    state_weights: list[float] | None = None
    visual_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.metric not in ("l1", "l2"):
            raise UserError(f"energy metric must be 'l1' or 'l2', got {self.metric!r}")
        if self.steps not in ("last", "sum"):
            raise UserError(f"energy steps must be 'last' or 'sum', got {self.steps!r}")
        if (
            self.visual_weight < 0
            or self.proprio_weight < 0
            or not self.visual_weight + self.proprio_weight > 0
        ):
            raise UserError(
                "energy visual_weight and proprio_weight must be >= 0 and not both 0, got "
                f"{self.visual_weight} and {self.proprio_weight}"
            )

    def __call__(self, pred: Latent, goal: Latent) -> Tensor:
        """pred: visual [C, H, N, D] (proprio [C, H, S]); goal: visual [1, N, D] (proprio [1, S]) -> [C]."""
        if self.visual_weight:
            energy = self.visual_weight * self._per_step(pred.visual, goal.visual)
        else:  # the states alone: the predicted frames are not even computed (`frames=False` in unroll)
            energy = pred.visual.new_zeros(pred.visual.shape[0])
        if self.proprio_weight:
            if pred.proprio is None or goal.proprio is None:
                raise UserError("proprio_weight > 0 needs latents with a proprio part (pred and goal)")
            pred_state, goal_state = self.weigh_state(pred.proprio), self.weigh_state(goal.proprio)
            energy = energy + self.proprio_weight * self._per_step(pred_state, goal_state)
        return energy

    def weigh_state(self, state: Tensor) -> Tensor:
        """state [..., S] scaled by state_weights: each value as much as it counts in the energy."""
        if self.state_weights is None:
            return state
        if len(self.state_weights) != state.shape[-1]:
            raise UserError(
                f"energy state_weights has {len(self.state_weights)} values for {state.shape[-1]}-D states"
            )
        return state * torch.tensor(self.state_weights, device=state.device, dtype=state.dtype)

    def _per_step(self, pred: Tensor, goal: Tensor) -> Tensor:
        """pred [C, H, ...], goal [1, ...] -> [C], reduced over the steps as configured."""
        if self.steps == "last":
            return _distance(pred[:, -1], goal, self.metric, keep_dims=1)
        return _distance(pred, goal.unsqueeze(1), self.metric, keep_dims=2).sum(1)
