"""I-JEPA multiblock masks: several target blocks to predict from one large context block.

Per batch the target size and the context size are drawn once; per image, `num_targets` target blocks
(which may overlap each other) and one context block are placed, and the context loses every patch of
every target, so the encoder never sees what the predictor must predict.

Termination (where we deviate from the official collator, which can loop forever): the official code
also demands min_keep patches from each target block and, on small grids, redraws a too-small block
forever (at an 8x8 grid a 3x3 target never has more than 10 patches). Here min_keep applies to the
context only, and the context position is redrawn at most MAX_TRIES times; an image whose context
still has fewer than min_keep patches then gets the whole grid minus its targets as context. The
target size is shrunk, if needed, so that this fallback always holds min_keep patches. The official
code instead relaxes by letting the context overlap targets; we keep context and targets disjoint.

Positions are uniform over all placements (the official I-JEPA code never places a block on the last
row or column, and caps blocks at H-1 x W-1; V-JEPA's code fixed both).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from worldjepa.errors import UserError
from worldjepa.masks.blocks import (
    Masks,
    check_range,
    draw_with_retries,
    sample_block_size,
    sample_blocks,
    shrink_to_area,
    to_indices,
)


@dataclass
class MultiBlock2DConfig:
    """I-JEPA defaults (official ImageNet configs)."""

    num_targets: int = 4
    target_scale: tuple[float, float] = (0.15, 0.2)
    target_aspect_ratio: tuple[float, float] = (0.75, 1.5)
    context_scale: tuple[float, float] = (0.85, 1.0)
    context_aspect_ratio: tuple[float, float] = (1.0, 1.0)
    min_keep: int = 10  # fewest context patches per image

    def __post_init__(self) -> None:
        check_range("target_scale", self.target_scale, 0.0, 1.0)
        check_range("context_scale", self.context_scale, 0.0, 1.0)
        check_range("target_aspect_ratio", self.target_aspect_ratio, 1e-6, float("inf"))
        check_range("context_aspect_ratio", self.context_aspect_ratio, 1e-6, float("inf"))
        if self.num_targets < 1 or self.min_keep < 1:
            raise UserError(f"mask num_targets={self.num_targets} and min_keep={self.min_keep} must be >= 1")


class MultiBlock2D:
    """Sampler of I-JEPA masks on a patch grid (H, W); `sampler(B, generator)` -> Masks with
    context [B, Kc] and targets [num_targets, B, Kt] (Kt = h*w of the batch's target size)."""

    def __init__(self, grid: tuple[int, int], config: MultiBlock2DConfig | None = None):
        self.grid = (int(grid[0]), int(grid[1]))
        self.config = config or MultiBlock2DConfig()
        H, W = self.grid
        min_keep, num_targets = self.config.min_keep, self.config.num_targets
        # Largest target area whose blocks, even disjoint, leave min_keep patches for the context.
        self.max_target_area = (H * W - min_keep) // num_targets
        if self.max_target_area < 1:
            raise UserError(
                f"mask min_keep={min_keep} cannot hold on a {H}x{W} patch grid with {num_targets} target "
                "blocks; lower min_keep or num_targets, or use more patches"
            )

    def __call__(self, batch_size: int, generator: torch.Generator) -> Masks:
        cfg, grid = self.config, self.grid
        target_size = sample_block_size(grid, cfg.target_scale, cfg.target_aspect_ratio, generator)
        target_size = shrink_to_area(target_size, self.max_target_area)
        context_size = sample_block_size(grid, cfg.context_scale, cfg.context_aspect_ratio, generator)

        targets = sample_blocks(grid, target_size, (batch_size, cfg.num_targets), generator)  # [B, n, N]
        free = ~targets.any(1)  # [B, N] patches outside every target
        context, ok = draw_with_retries(
            lambda: sample_blocks(grid, context_size, (batch_size,), generator) & free,
            lambda m: m.sum(1) >= cfg.min_keep,
        )
        context = torch.where(ok[:, None], context, free)

        flat_targets = targets.transpose(0, 1).reshape(cfg.num_targets * batch_size, -1)
        return Masks(
            context=to_indices(context),
            targets=to_indices(flat_targets).view(cfg.num_targets, batch_size, -1),
        )
