"""V-JEPA (Bardes et al., 2024) and V-JEPA 2's action-free stage: feature prediction in video.

Each mask generator (short-range: many small blocks; long-range: few large ones) removes the union
of its blocks across all frames; the context encoder sees the rest, and the predictor, given one
mask token per generator, predicts the layer-normed target-encoder tokens of the removed tubelets.
Loss: L1, averaged over the mask generators. The same step trains V-JEPA 2 encoders (RoPE instead
of sin-cos position embeddings): that choice lives in the encoder, not here.
"""

from __future__ import annotations

import torch

from worldjepa.methods.jepa import JEPA
from worldjepa.nn.vit import gather_tokens
from worldjepa.train.method import StepOutput


class VJEPA(JEPA):
    """batch: "video" [B, 3, T, H, W]; "context" / "targets": lists over mask generators of [B, K]."""

    def forward(self, batch: dict) -> StepOutput:
        video = batch["video"]
        h = self.targets(video)  # [B, N, D]
        losses, contexts = [], []
        for index, (context, target) in enumerate(zip(batch["context"], batch["targets"], strict=True)):
            z = self.encoder(video, keep=context)  # [B, Kc, D]
            prediction = self.predictor(z, context, target, mask_index=index)  # [B, Kt, D]
            losses.append((prediction - gather_tokens(h, target)).abs().mean())
            contexts.append(z)
        loss = torch.stack(losses).mean()
        metrics = {f"loss_generator{i}": value.detach() for i, value in enumerate(losses)}
        return self.finish(loss, torch.cat(contexts, dim=1), metrics)
