"""Rectangular blocks on a patch grid: the shared core of the 2D and 3D multiblock samplers.

A block is drawn in two steps, as in the official samplers: its size (h, w) once per batch from a
scale range (fraction of the grid) and an aspect-ratio range (h / w), then its position per sample,
uniform over every placement that fits the grid. Everything after the size draw is vectorised over
the batch, so a batch costs a few tensor ops instead of a Python loop per sample.

Masks are boolean tensors [..., H*W] over row-major patches (index h*W + w) until the very end,
where `to_indices` turns them into the index lists the models gather with.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from worldjepa.errors import UserError

# Rejection rounds before a sampler relaxes its constraint (the official samplers relax after 20).
MAX_TRIES = 20


class Masks(NamedTuple):
    """What a sampler returns: int64 token indices, sorted ascending, one row per sample.

    context: the tokens the encoder sees; targets: the tokens the predictor must predict.
    2D sampler: context [B, Kc], targets [num_targets, B, Kt].
    3D sampler: context and targets are lists over mask generators of [B, Kc_g] and [B, Kt_g].
    """

    context: Tensor | list[Tensor]
    targets: Tensor | list[Tensor]


def check_range(name: str, bounds: tuple[float, float], low: float, high: float) -> None:
    """Refuse a (min, max) range that is unordered or leaves [low, high]."""
    lo, hi = bounds
    if not low <= lo <= hi <= high:
        raise UserError(f"mask {name} must satisfy {low} <= min <= max <= {high}, got {tuple(bounds)}")


def sample_block_size(
    grid: tuple[int, int],
    scale: tuple[float, float],
    aspect_ratio: tuple[float, float],
    generator: torch.Generator,
) -> tuple[int, int]:
    """Draw one block size (h, w): area = int(H*W*scale), h/w = aspect ratio, rounded, clipped to the grid.

    Scale and aspect ratio are drawn independently (the I-JEPA paper's description; the official I-JEPA
    code reuses one uniform number for both, which ties large blocks to tall shapes).
    """
    H, W = grid
    u_scale, u_ratio = torch.rand(2, generator=generator).tolist()
    area = int(H * W * (scale[0] + u_scale * (scale[1] - scale[0])))
    ratio = aspect_ratio[0] + u_ratio * (aspect_ratio[1] - aspect_ratio[0])
    h = min(H, max(1, round(math.sqrt(area * ratio))))
    w = min(W, max(1, round(math.sqrt(area / ratio))))
    return h, w


def shrink_to_area(size: tuple[int, int], max_area: int) -> tuple[int, int]:
    """Shrink the longer side of (h, w) one patch at a time until h*w <= max_area (>= 1).

    This is how a sampler keeps its min_keep guarantee reachable whatever block size it drew.
    """
    h, w = size
    while h * w > max_area:
        if h >= w:
            h -= 1
        else:
            w -= 1
    return h, w


def sample_blocks(
    grid: tuple[int, int], size: tuple[int, int], shape: tuple[int, ...], generator: torch.Generator
) -> Tensor:
    """Place blocks of one size uniformly on the grid: bool [*shape, H*W], True inside each block."""
    H, W = grid
    h, w = size
    top = torch.randint(0, H - h + 1, (*shape, 1), generator=generator)
    left = torch.randint(0, W - w + 1, (*shape, 1), generator=generator)
    rows, cols = torch.arange(H), torch.arange(W)
    in_rows = (rows >= top) & (rows < top + h)  # [*shape, H]
    in_cols = (cols >= left) & (cols < left + w)  # [*shape, W]
    return (in_rows[..., :, None] & in_cols[..., None, :]).flatten(-2)


def draw_with_retries(
    draw: Callable[[], Tensor], accept: Callable[[Tensor], Tensor]
) -> tuple[Tensor, Tensor]:
    """Rejection sampling per sample: redraw the rejected rows of `draw()` up to MAX_TRIES times.

    `draw()` returns a batch [B, ...], `accept` maps it to bool [B]. Returns the batch and which rows
    were accepted; the caller relaxes the rest deterministically, so sampling always terminates.
    """
    masks = draw()
    ok = accept(masks)
    for _ in range(MAX_TRIES):
        if ok.all():
            break
        keep = ok.view(-1, *([1] * (masks.dim() - 1)))
        masks = torch.where(keep, masks, draw())
        ok = accept(masks)
    return masks, ok


def to_indices(mask: Tensor, max_keep: int | None = None) -> Tensor:
    """Bool [B, N] -> int64 [B, K]: each row's True positions ascending, cut to the batch's shortest row
    (and to max_keep), so the batch stacks into one tensor."""
    k = int(mask.sum(1).min())
    if max_keep is not None:
        k = min(k, max_keep)
    first_k = mask & (mask.cumsum(1) <= k)
    return first_k.nonzero()[:, 1].view(mask.shape[0], k)
