"""V-JEPA (Bardes et al., 2024) and V-JEPA 2's action-free stage: feature prediction in video.

Each mask generator (short-range: many small blocks; long-range: few large ones) removes the union
of its blocks across all frames; the context encoder sees the rest, and the predictor, given one
mask token per generator, predicts the layer-normed target-encoder tokens of the removed tubelets.
Loss: L1, averaged over the mask generators. The same step trains V-JEPA 2 encoders (RoPE instead
of sin-cos position embeddings): that choice lives in the encoder, not here.

V-JEPA 2.1 (Mur-Labadia et al., 2026) options, off by default (`VJEPA21Config`):
- dense predictive loss: the predictor also predicts the visible (context) tokens, each weighted by
  lambda / sqrt(its distance to the nearest masked token in its frame), so context tokens stay spatially
  grounded instead of turning into global registers; lambda ramps up from 0 over a warm-up.
- deep self-supervision: the outputs of intermediate encoder blocks are targets too; the predictor
  takes the context encoder's tokens of every level (fused by an MLP) and predicts every level.

worldjepa's own option, off by default (`motion_weight`, a deviation from both papers): a target token's
L1 counts more the more its place changes over the clip (`motion_weights`). On a robot's fixed camera most
target tokens show the same table at the same place in every clip (on the arm video their place alone
explains 83 % of their variance), so V-JEPA's loss is mostly solved without looking at the arm; weighting
the places that move puts it back on the arm (measured in the README's stage-1 table).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from worldjepa.errors import UserError
from worldjepa.methods.jepa import JEPA
from worldjepa.methods.regularizers import RegularizerConfig
from worldjepa.nn.rope import token_coords
from worldjepa.nn.vit import Grid, gather_tokens
from worldjepa.train.method import StepOutput


@dataclass
class VJEPA21Config:
    """context_loss_weight: lambda of the dense loss (0 = V-JEPA 2); context_loss_warmup: fraction of
    training over which lambda ramps up linearly from 0; levels: 1-based intermediate encoder blocks
    that are also targets ([] = the last block only)."""

    context_loss_weight: float = 0.0
    context_loss_warmup: float = 0.0
    levels: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.context_loss_weight < 0 or not 0 <= self.context_loss_warmup <= 1:
            raise UserError(
                "vjepa21.context_loss_weight must be >= 0 and vjepa21.context_loss_warmup in [0, 1], got "
                f"{self.context_loss_weight} and {self.context_loss_warmup}"
            )
        if not isinstance(self.levels, list) or self.levels != sorted(set(self.levels)):
            raise UserError(
                f"vjepa21.levels must be distinct block numbers in ascending order, got {self.levels}"
            )


def context_weights(keep_context: Tensor, keep_target: Tensor, grid: Grid) -> Tensor:
    """1 / sqrt(distance in (h, w) tokens from each context token to the nearest target position): [B, Kc].

    V-JEPA's masks are tubes through all frames, so a context token's nearest masked token is in its own
    frame: the distance is spatial. (The collator trims target lists to the batch's shortest from the
    end, so the last frames may lack some target tokens; the spatial distance does not depend on that.)
    """
    context = token_coords(keep_context, grid[1], grid[2])[..., 1:].float()
    target = token_coords(keep_target, grid[1], grid[2])[..., 1:].float()
    distance = torch.cdist(context, target, compute_mode="donot_use_mm_for_euclid_dist")
    return distance.amin(dim=-1).clamp_min(1.0).rsqrt()


def motion_weights(h: Tensor, frames: int, alpha: float) -> Tensor:
    """Loss weights [B, N] of target tokens h [B, N, D] on `frames` token frames, mean 1 in each clip:
    1 + alpha * (how much the tokens at a place differ from their mean over the clip) / (the clip's mean of
    that change), the same at a place in every frame."""
    tokens = h.unflatten(1, (frames, -1))  # [B, T, S, D]
    change = (tokens - tokens.mean(1, keepdim=True)).abs().mean((1, 3))  # [B, S]
    weights = 1 + alpha * change / change.mean(1, keepdim=True).clamp_min(1e-6)
    weights = weights / weights.mean(1, keepdim=True)
    return weights.repeat(1, frames)


class VJEPA(JEPA):
    """batch: "video" [B, 3, T, H, W]; "context" / "targets": lists over mask generators of [B, K]."""

    def __init__(
        self,
        encoder: torch.nn.Module,
        predictor: torch.nn.Module,
        ema: tuple[float, float] = (0.998, 1.0),
        regularizer: RegularizerConfig | None = None,
        options: VJEPA21Config | None = None,
        motion_weight: float = 0.0,
    ):
        super().__init__(encoder, predictor, ema, regularizer)
        self.motion_weight = motion_weight
        self.options = options or VJEPA21Config()
        encoder.check_levels(self.options.levels, "vjepa21.levels")
        self.levels = tuple(self.options.levels)
        self.dense = self.options.context_loss_weight > 0
        if self.dense:  # the warm-up's clock, saved in checkpoints so a resumed run continues it
            self.register_buffer("progress", torch.zeros(()))

    def context_loss_weight(self) -> Tensor:
        """lambda at the progress of the last finished step, ramped over the warm-up."""
        warmup = self.options.context_loss_warmup
        ramp = (self.progress / warmup).clamp(max=1.0) if warmup > 0 else torch.ones_like(self.progress)
        return self.options.context_loss_weight * ramp

    def forward(self, batch: dict) -> StepOutput:
        video = batch["video"]
        h = self.targets(video, self.levels)  # [B, N, D * levels]
        grid = self.encoder.prepare_input(video)[1]
        width = h.shape[-1] // (len(self.levels) + 1)
        weights = motion_weights(h, grid[0], self.motion_weight) if self.motion_weight else None
        losses, context_losses, contexts = [], [], []
        for index, (context, target) in enumerate(zip(batch["context"], batch["targets"], strict=True)):
            z = self.encoder(video, keep=context, levels=self.levels)  # [B, Kc, D * levels]
            prediction = self.predictor(z, context, target, mask_index=index, return_context=self.dense)
            error = (prediction[:, -target.shape[1] :] - gather_tokens(h, target)).abs().mean(-1)  # [B, Kt]
            if weights is not None:
                error = torch.gather(weights, 1, target) * error
            losses.append(error.mean())
            if self.dense:
                error = (prediction[:, : context.shape[1]] - gather_tokens(h, context)).abs().mean(dim=-1)
                context_losses.append((context_weights(context, target, grid) * error).mean())
            contexts.append(z[..., -width:])  # the last level
        loss = torch.stack(losses).mean()
        metrics = {f"loss_generator{i}": value.detach() for i, value in enumerate(losses)}
        if self.dense:  # logged prediction_loss stays the masked tokens' loss
            context_loss = torch.stack(context_losses).mean()
            metrics.update(prediction_loss=loss.detach(), context_loss=context_loss.detach())
            loss = loss + self.context_loss_weight() * context_loss
        return self.finish(loss, torch.cat(contexts, dim=1), metrics)

    def after_optimizer_step(self, progress: float) -> None:
        super().after_optimizer_step(progress)
        if self.dense:
            self.progress.fill_(progress)
