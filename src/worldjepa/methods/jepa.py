"""What every JEPA method shares: an online context encoder, an EMA target encoder and a predictor.

The target encoder is a frozen copy of the context encoder, updated only by an exponential moving
average whose momentum rises linearly from `ema[0]` to `ema[1]` over training (I-JEPA 0.996 -> 1.0,
V-JEPA 0.998 -> 1.0). Targets are the target encoder's tokens, layer-normed without affine parameters.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worldjepa.methods.regularizers import RegularizerConfig, collapse_regularizer
from worldjepa.train.ema import ema_update
from worldjepa.train.method import StepOutput


class JEPA(nn.Module):
    """Context encoder + EMA target encoder + predictor; subclasses define `forward(batch)`."""

    def __init__(
        self,
        encoder: nn.Module,
        predictor: nn.Module,
        ema: tuple[float, float] = (0.996, 1.0),
        regularizer: RegularizerConfig | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.ema = tuple(ema)
        self.regularizer = regularizer or RegularizerConfig()

    @torch.no_grad()
    def targets(self, x: Tensor, levels: tuple[int, ...] = ()) -> Tensor:
        """Layer-normed target-encoder tokens of the full input: [B, N, D], or with intermediate
        `levels` each level normed on its own, stacked on the channel axis: [B, N, D * (len(levels) + 1)]."""
        h = self.target_encoder(x, levels=levels)
        h = h.unflatten(-1, (len(levels) + 1, -1))
        return F.layer_norm(h, h.shape[-1:]).flatten(-2)

    def finish(self, loss: Tensor, context_tokens: Tensor, metrics: dict[str, Tensor]) -> StepOutput:
        """Add the optional collapse regularizer on pooled context embeddings [B, D] and package the step."""
        pooled = context_tokens.mean(dim=1)
        reg, reg_metrics = collapse_regularizer(pooled, self.regularizer)
        metrics = {"prediction_loss": loss.detach(), **metrics, **reg_metrics}
        return StepOutput(loss=loss + reg, metrics=metrics, embeddings=pooled.detach())

    def momentum(self, progress: float) -> float:
        start, end = self.ema
        return start + (end - start) * progress

    def after_optimizer_step(self, progress: float) -> None:
        ema_update(self.target_encoder, self.encoder, self.momentum(progress))
