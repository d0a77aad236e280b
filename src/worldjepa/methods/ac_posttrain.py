"""V-JEPA 2-AC post-training (stage 2): teach a predictor how actions change the frozen encoder's latents.

The encoder is frozen, so its frame latents come precomputed (`worldjepa.data.embedding_cache`); a
step only runs the action-conditioned predictor. Both losses are L1 on layer-normed latents:
- teacher forcing: ground-truth frames 0..T-1 (with actions and states 0..T-1) predict frames 1..T in
  one block-causal forward;
- rollout: the model's own predictions are fed back. Step 1 is the teacher-forced prediction; each
  further step up to `rollout_steps` (official `auto_steps`, default 2) is predicted from frame 0 and
  the earlier predictions, with ground-truth actions and states. Gradients flow through the fed-back
  predictions (no detach), so the model learns to correct its own drift.
The official total is teacher forcing + rollout (both weights 1).

Proprioception: with `use_proprio`, the predictor's state tokens carry the recorded states (the
planner's future states come from a proprio head, fitted separately: `worldjepa.methods.proprio_fit`).
Without it, the state tokens are zeros: the state encoder then emits only its bias, a constant token
without information, and the checkpoint layout is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from worldjepa.errors import UserError
from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.ac_rollout import predict_next, rollout
from worldjepa.train.method import StepOutput


@dataclass
class ACPostTrainConfig:
    """rollout_steps: frames predicted in the rollout loss (>= 1, capped at the clip's T); the weights
    scale the teacher-forcing and rollout losses."""

    rollout_steps: int = 2
    teacher_forcing_weight: float = 1.0
    rollout_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.rollout_steps < 1:
            raise UserError(f"rollout_steps must be >= 1, got {self.rollout_steps}")


class ACPostTraining(nn.Module):
    """batch: "z" [B, T+1, N, D] cached latents on `grid`, "actions" [B, T, A], "states" [B, T+1, S]."""

    def __init__(
        self,
        predictor: ActionConditionedPredictor,
        grid: tuple[int, int],
        use_proprio: bool = True,
        cfg: ACPostTrainConfig | None = None,
    ) -> None:
        super().__init__()
        self.predictor, self.use_proprio = predictor, use_proprio
        self.grid = tuple(grid)
        self.cfg = cfg or ACPostTrainConfig()

    def forward(self, batch: dict[str, Tensor]) -> StepOutput:
        z, actions, states = batch["z"], batch["actions"], batch["states"]
        cfg, steps = self.cfg, actions.shape[1]
        cond_states = states if self.use_proprio else torch.zeros_like(states)

        predicted = predict_next(self.predictor, z[:, :-1], actions, cond_states[:, :-1], self.grid)
        teacher_forcing_loss = (predicted - z[:, 1:]).abs().mean()

        horizon = min(cfg.rollout_steps, steps)
        fed_back = torch.cat([z[:, :1], predicted[:, :1]], dim=1)  # frame 0, predicted frame 1
        later = rollout(self.predictor, fed_back, actions, cond_states, horizon - 1, self.grid)
        rolled = torch.cat([predicted[:, :1], later], dim=1)  # frames 1..horizon
        rollout_loss = (rolled - z[:, 1 : horizon + 1]).abs().mean()

        loss = cfg.teacher_forcing_weight * teacher_forcing_loss + cfg.rollout_weight * rollout_loss
        metrics = {
            "teacher_forcing_loss": teacher_forcing_loss.detach(),
            "rollout_loss": rollout_loss.detach(),
        }
        return StepOutput(loss=loss, metrics=metrics, embeddings=predicted.detach().mean(2).flatten(0, 1))

    def after_optimizer_step(self, progress: float) -> None:
        """Nothing follows an update: no EMA target, the encoder is frozen and cached."""
