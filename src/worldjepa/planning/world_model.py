"""What a planner sees of a world model: a `Latent` record and the `encode` / `encode_goal` / `unroll`
protocol.

Planners never touch pixels or simulators; they only call `unroll` on a start latent with a batch of
candidate action sequences and score the predicted latents with an objective. Any object with these
two methods plugs in: the V-JEPA 2-AC predictor, a tiny analytic model in the tests, or the true
simulator (the upper-bound baseline in `worldjepa.eval.closed_loop`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from torch import Tensor

from worldjepa.planning.goal import Goal


@dataclass
class Latent:
    """Embedding of one frame per batch row, or of H predicted frames.

    visual:  [B, N, D] for one frame, [B, H, N, D] for a trajectory (N tokens per frame: 1 when
             pooled, the full patch grid otherwise).
    proprio: [B, S] / [B, H, S] proprioceptive state (e.g. the arm's end-effector pose), or None.
    """

    visual: Tensor
    proprio: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.visual.shape[0]

    def expand(self, batch: int) -> Latent:
        """Repeat a one-row latent `batch` times as a view (no copy): the start frame of every
        candidate action sequence is the same, so it is encoded once and shared."""
        if self.batch_size != 1:
            raise ValueError(f"expand needs a latent with batch size 1, got {self.batch_size}")
        proprio = None if self.proprio is None else self.proprio.expand(batch, *self.proprio.shape[1:])
        return Latent(self.visual.expand(batch, *self.visual.shape[1:]), proprio)


class WorldModel(Protocol):
    """An action-conditioned world model, as the planners and the MPC agent use it."""

    def encode(self, obs: dict[str, Tensor]) -> Latent:
        """obs: `pixels` [B, H, W, 3] uint8 (or [B, 3, H, W] float) and `state` [B, S] -> one-frame latent."""
        ...

    def encode_goal(self, goal: Goal) -> Latent:
        """A goal (`worldjepa.planning.goal`) -> its latent, batch 1: the image's embedding, and a goal state
        when the model can estimate one from the image (or, for a privileged reference, was given one).
        A model that reads the goal state relative to the current observation sets
        `goal_state_follows_current = True` and takes that observation as `encode_goal(goal, current)`;
        the agent then encodes the goal at every re-plan."""
        ...

    def unroll(self, latent: Latent, actions: Tensor) -> Latent:
        """Predict the latents after each action. latent: one frame, batch B; actions: [B, H, A];
        returns the predicted latents of steps 1..H, visual [B, H, N, D] (proprio [B, H, S]). A world model
        planned with an energy that scores states alone (`visual_weight` 0) also takes `frames=False`:
        the frames need not be predicted."""
        ...
