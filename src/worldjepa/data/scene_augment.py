"""Scene randomisation for a network that reads a state from pixels in scenes it was never trained in.

The state readout (`worldjepa.nn.state_readout`) is fitted on frames of one scene, but a goal image may
come from a scene that looks different: other colours, a textured table, other lights, a moved camera,
objects that were not there. Trained on the plain frames it reads such goal images metres off. Each
training image therefore gets its own random look, drawn from generic families (none is a copy of a
test scene): its colour channels mixed, permuted and scaled, a light ramp, a brightness, contrast and
tone-curve change (with `reshade`, one that is not monotonic), a checker texture of random period laid
over it, a few boxes of random colour pasted on it, and a small shift, zoom and turn of the view.
Batched: one pass of tensor ops per batch, no per-image loop.
Frames that show one scene together (a current image and a goal image) share one look (`group`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _uniform(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


#: Levels of a `_reshade` tone curve, at evenly spaced input values from 0 to 1.
RESHADE_LEVELS = 5


def _reshade(x: Tensor, levels: Tensor) -> Tensor:
    """x [B, 3, H, W] in [0, 1] through a piecewise-linear tone curve through `levels` [B, 1, 1, 1, L] (the
    output at inputs 0, 1/(L-1), ..., 1), one curve per image. Drawn at random, the curve is not monotonic:
    which of two faces of a link is the brighter no longer says which way it faces the light, as under a
    light from another side, while every edge and outline stays where it was."""
    position = x * (levels.shape[-1] - 1)
    below = position.floor().clamp(max=levels.shape[-1] - 2)
    curve = levels.expand(*x.shape, -1)
    low = curve.gather(-1, below.long()[..., None])[..., 0]
    high = curve.gather(-1, below.long()[..., None] + 1)[..., 0]
    return low + (position - below) * (high - low)


def scene_augment(
    frames: Tensor, generator: torch.Generator, boxes: int = 3, group: int = 1, reshade: float = 0.0
) -> Tensor:
    """float frames [B, 3, H, W] in [0, 1] -> the same frames in random scene looks: one look per
    `group` consecutive frames (B a multiple of it); a share `reshade` of the looks get a tone curve that
    is not monotonic (`_reshade`). On the frames' device; every random draw comes from `generator`, on
    the CPU."""
    batch, _, height, width = frames.shape
    if batch % group:
        raise ValueError(f"{batch} frames do not split into groups of {group}")
    looks, device = batch // group, frames.device
    if batch == 0:  # a random share of a batch may pick no image
        return frames.clone()

    def draw(*shape: int, low: float = 0.0, high: float = 1.0) -> Tensor:
        """[B, *shape] uniform in [low, high), equal within each group."""
        values = _uniform(generator, (looks, *shape), low, high).repeat_interleave(group, dim=0)
        return values.to(device)

    # colours: half the images get their channels permuted, all a random grey blend and channel gains
    order = draw(3).argsort(dim=1)
    order[draw() < 0.5] = torch.arange(3, device=device)
    mix = F.one_hot(order, 3).float()  # [B, 3, 3]: output channel i takes input order[i]
    grey = draw(1, 1, high=0.6)
    mix = (1 - grey) * mix + grey / 3
    mix = mix * draw(3, 1, low=0.6, high=1.4)
    x = torch.einsum("bij,bjhw->bihw", mix, frames)

    # light: a ramp across the view (a light from another side), brightness, contrast
    row_index = torch.arange(height, device=device).view(1, 1, height, 1).float()
    col_index = torch.arange(width, device=device).view(1, 1, 1, width).float()
    rows, cols = row_index / max(height - 1, 1) - 0.5, col_index / max(width - 1, 1) - 0.5
    slope_rows, slope_cols = (
        draw(1, 1, 1, low=-0.8, high=0.8),
        draw(1, 1, 1, low=-0.8, high=0.8),
    )
    x = x * (1 + slope_rows * rows + slope_cols * cols) * draw(1, 1, 1, low=0.45, high=1.3)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * draw(1, 1, 1, low=0.6, high=1.4) + draw(1, 1, 1, low=-0.1, high=0.1)
    x = x.clamp(0.0, 1.0) ** draw(1, 1, 1, low=0.6, high=2.2)  # a tone curve: shadows vs highlights
    if reshade > 0:
        x = torch.where(draw(1, 1, 1) < reshade, _reshade(x, draw(1, 1, 1, RESHADE_LEVELS)), x)

    # texture: a checker of random period, angle and strength over half the images
    period = draw(1, 1, 1, low=3.0, high=12.0)
    angle = draw(1, 1, 1, high=math.pi / 2)
    along = (col_index * angle.cos() + row_index * angle.sin()) / period
    across = (row_index * angle.cos() - col_index * angle.sin()) / period
    checker = (torch.sin(math.pi * along) * torch.sin(math.pi * across)).sign()
    strength = draw(1, 1, 1, high=0.2) * (draw(1, 1, 1) < 0.5)
    x = x + strength * checker

    # objects: up to `boxes` boxes of random colour, each present with probability 1/2
    for _ in range(boxes):
        size_h = draw(1, 1, low=0.05, high=0.16) * height
        size_w = draw(1, 1, low=0.05, high=0.16) * width
        top, left = draw(1, 1) * (height - size_h), draw(1, 1) * (width - size_w)
        inside = (
            (row_index[:, 0] >= top) & (row_index[:, 0] < top + size_h)
            & (col_index[:, 0] >= left) & (col_index[:, 0] < left + size_w)
        )  # fmt: skip
        inside = inside & (draw(1, 1) < 0.5)
        x = torch.where(inside[:, None], draw(3, 1, 1), x)

    # view: a small shift, zoom and turn
    angle = draw(low=-math.radians(6), high=math.radians(6))
    scale = draw(low=0.9, high=1.1)
    theta = torch.zeros(batch, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 1] = scale * angle.cos(), -scale * angle.sin()
    theta[:, 1, 0], theta[:, 1, 1] = scale * angle.sin(), scale * angle.cos()
    theta[:, :, 2] = draw(2, low=-0.1, high=0.1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    return x.clamp(0.0, 1.0)
