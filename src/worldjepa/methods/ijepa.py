"""I-JEPA (Assran et al., 2023): predict the target encoder's representations of several image blocks
from one context block.

One training step: the target encoder sees the full image; its layer-normed tokens at each of the
M target blocks are the targets. The context encoder sees only the context tokens (the context block
minus every target block). The predictor gets the context tokens plus one mask token per target
position (with that position's embedding) and predicts each target block separately: row j*B + b is
target block j of sample b. Loss: smooth L1. As in the official step, the context is projected to the
predictor's width once for all blocks and the targets are gathered per block from one [B, N, D] tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from worldjepa.methods.jepa import JEPA
from worldjepa.nn.vit import gather_tokens
from worldjepa.train.method import StepOutput


class IJEPA(JEPA):
    """batch: "image" [B, 3, H, W], "context" [B, Kc], "targets" [M, B, Kt] (token indices to keep)."""

    def forward(self, batch: dict) -> StepOutput:
        images, context, targets = batch["image"], batch["context"], batch["targets"]
        h = self.targets(images)  # [B, N, D]
        z = self.encoder(images, keep=context)  # [B, Kc, D]
        prediction = self.predictor(z, context, targets.flatten(0, 1))  # [M*B, Kt, D]
        target = torch.cat([gather_tokens(h, block) for block in targets])  # [M*B, Kt, D]
        loss = F.smooth_l1_loss(prediction, target)
        return self.finish(loss, z, {})
