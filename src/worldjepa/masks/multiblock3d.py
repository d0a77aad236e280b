"""V-JEPA multiblock masks: tubes through the whole clip, hidden from the encoder.

Each mask generator draws `num_blocks` spatial blocks (size once per batch, positions per clip) that
span every frame (temporal scale 1.0). Its target is the union of the blocks, its context is the
complement, so context and target partition the (T, H, W) token grid before the batch cut. The
defaults are the paper's two generators: short-range (8 blocks of spatial scale 0.15) and long-range
(2 blocks of spatial scale 0.7). Tokens are indexed t*H*W + h*W + w.

Termination (the official collator redraws an empty context forever): a clip whose context has fewer
than min_keep tokens is redrawn at most MAX_TRIES times, then keeps only its first k blocks, the most
that leave min_keep tokens. The block size is shrunk, if needed, so that one block always does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

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
class MaskGeneratorConfig:
    """One V-JEPA mask generator: its blocks' count and shape, and the context length bounds."""

    num_blocks: int = 8
    spatial_scale: tuple[float, float] = (0.15, 0.15)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    min_keep: int = 1  # fewest context tokens per clip; >= 1 so the context is never empty
    max_keep: int | None = None  # cap on the context length Kc (official option, unset by default)

    def __post_init__(self) -> None:
        check_range("spatial_scale", self.spatial_scale, 0.0, 1.0)
        check_range("aspect_ratio", self.aspect_ratio, 1e-6, float("inf"))
        if self.num_blocks < 1 or self.min_keep < 1:
            raise UserError(f"mask num_blocks={self.num_blocks} and min_keep={self.min_keep} must be >= 1")
        if self.max_keep is not None and self.max_keep < self.min_keep:
            raise UserError(f"mask max_keep={self.max_keep} must be >= min_keep={self.min_keep}")


def _paper_generators() -> tuple[MaskGeneratorConfig, ...]:
    return (
        MaskGeneratorConfig(num_blocks=8, spatial_scale=(0.15, 0.15)),  # short-range
        MaskGeneratorConfig(num_blocks=2, spatial_scale=(0.7, 0.7)),  # long-range
    )


@dataclass
class MultiBlock3DConfig:
    """V-JEPA defaults; `generators` also accepts mappings, so a YAML preset builds it directly."""

    generators: tuple[MaskGeneratorConfig, ...] = field(default_factory=_paper_generators)

    def __post_init__(self) -> None:
        self.generators = tuple(_as_generator(g) for g in self.generators)
        if not self.generators:
            raise UserError("mask generators must not be empty")


def _as_generator(spec: MaskGeneratorConfig | dict[str, Any]) -> MaskGeneratorConfig:
    return spec if isinstance(spec, MaskGeneratorConfig) else MaskGeneratorConfig(**spec)


class MultiBlock3D:
    """Sampler of V-JEPA masks on a token grid (T, H, W); `sampler(B, generator)` -> Masks with
    context and targets as lists over generators of [B, Kc_g] and [B, Kt_g]."""

    def __init__(self, grid: tuple[int, int, int], config: MultiBlock3DConfig | None = None):
        self.grid = (int(grid[0]), int(grid[1]), int(grid[2]))
        self.config = config or MultiBlock3DConfig()
        T, H, W = self.grid
        # Largest block area that still leaves min_keep context tokens across the T frames.
        self.max_block_areas = [H * W - math.ceil(g.min_keep / T) for g in self.config.generators]
        if min(self.max_block_areas) < 1:
            raise UserError(
                f"mask min_keep={max(g.min_keep for g in self.config.generators)} cannot hold on a "
                f"{T}x{H}x{W} token grid; lower min_keep or use more tokens"
            )

    def __call__(self, batch_size: int, generator: torch.Generator) -> Masks:
        contexts, targets = [], []
        for spec, max_area in zip(self.config.generators, self.max_block_areas, strict=True):
            context, target = self._sample(spec, max_area, batch_size, generator)
            contexts.append(context)
            targets.append(target)
        return Masks(context=contexts, targets=targets)

    def _sample(
        self, spec: MaskGeneratorConfig, max_area: int, batch_size: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """One generator's (context [B, Kc], target [B, Kt]) index lists."""
        T, plane = self.grid[0], self.grid[1:]
        size = sample_block_size(plane, spec.spatial_scale, spec.aspect_ratio, generator)
        size = shrink_to_area(size, max_area)
        blocks, _ = draw_with_retries(
            lambda: sample_blocks(plane, size, (batch_size, spec.num_blocks), generator),  # [B, n, H*W]
            lambda b: T * (~b.any(1)).sum(1) >= spec.min_keep,
        )
        # Union of the first k+1 blocks; keep the largest k that leaves min_keep tokens (all blocks for
        # every accepted clip, at least one block thanks to the size limit).
        prefix_unions = blocks.cumsum(1) > 0  # [B, n, H*W]
        enough = T * (~prefix_unions).sum(-1) >= spec.min_keep  # [B, n], True then False
        k = enough.sum(1) - 1
        target = prefix_unions[torch.arange(batch_size), k].repeat(1, T)  # [B, T*H*W], same in every frame
        return to_indices(~target, spec.max_keep), to_indices(target)
