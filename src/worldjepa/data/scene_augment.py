"""Scene randomisation for a network that reads a state from pixels in scenes it was never trained in.

The state readout (`worldjepa.nn.state_readout`) is fitted on frames of one scene, but a goal image may
come from a scene that looks different: other colours, a textured table, other lights, a moved camera,
objects that were not there. Trained on the plain frames it reads such goal images metres off. Each
training image therefore gets its own random look, drawn from generic families (none is a copy of a
test scene): its colour channels mixed, permuted and scaled, a light ramp, a brightness, contrast and
tone-curve change, a checker texture of random period laid over it, a few boxes of random colour pasted on it, and a
small shift, zoom and turn of the view. Batched: one pass of tensor ops per batch, no per-image loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _uniform(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


def scene_augment(frames: Tensor, generator: torch.Generator, boxes: int = 3) -> Tensor:
    """float frames [B, 3, H, W] in [0, 1] -> the same frames, each in a random scene look (on the
    frames' device; every random draw comes from `generator`, on the CPU)."""
    batch, _, height, width = frames.shape
    device = frames.device
    if batch == 0:  # a random share of a batch may pick no image
        return frames.clone()

    def draw(*shape: int, low: float = 0.0, high: float = 1.0) -> Tensor:
        return _uniform(generator, shape, low, high).to(device)

    # colours: half the images get their channels permuted, all a random grey blend and channel gains
    order = torch.rand(batch, 3, generator=generator).argsort(dim=1)
    keep = torch.rand(batch, generator=generator) < 0.5
    order[keep] = torch.arange(3)
    mix = F.one_hot(order, 3).float().to(device)  # [B, 3, 3]: output channel i takes input order[i]
    grey = draw(batch, 1, 1, high=0.6)
    mix = (1 - grey) * mix + grey / 3
    mix = mix * draw(batch, 3, 1, low=0.6, high=1.4)
    x = torch.einsum("bij,bjhw->bihw", mix, frames)

    # light: a ramp across the view (a light from another side), brightness, contrast
    row_index = torch.arange(height, device=device).view(1, 1, height, 1).float()
    col_index = torch.arange(width, device=device).view(1, 1, 1, width).float()
    rows, cols = row_index / max(height - 1, 1) - 0.5, col_index / max(width - 1, 1) - 0.5
    slope_rows, slope_cols = (
        draw(batch, 1, 1, 1, low=-0.8, high=0.8),
        draw(batch, 1, 1, 1, low=-0.8, high=0.8),
    )
    x = x * (1 + slope_rows * rows + slope_cols * cols) * draw(batch, 1, 1, 1, low=0.45, high=1.3)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * draw(batch, 1, 1, 1, low=0.6, high=1.4) + draw(batch, 1, 1, 1, low=-0.1, high=0.1)
    x = x.clamp(0.0, 1.0) ** draw(batch, 1, 1, 1, low=0.6, high=2.2)  # a tone curve: shadows vs highlights

    # texture: a checker of random period, angle and strength over half the images
    period = draw(batch, 1, 1, 1, low=3.0, high=12.0)
    angle = draw(batch, 1, 1, 1, high=math.pi / 2)
    along = (col_index * angle.cos() + row_index * angle.sin()) / period
    across = (row_index * angle.cos() - col_index * angle.sin()) / period
    checker = (torch.sin(math.pi * along) * torch.sin(math.pi * across)).sign()
    strength = draw(batch, 1, 1, 1, high=0.2) * (draw(batch, 1, 1, 1) < 0.5)
    x = x + strength * checker

    # objects: up to `boxes` boxes of random colour, each present with probability 1/2
    for _ in range(boxes):
        size_h = draw(batch, 1, 1, low=0.05, high=0.16) * height
        size_w = draw(batch, 1, 1, low=0.05, high=0.16) * width
        top, left = draw(batch, 1, 1) * (height - size_h), draw(batch, 1, 1) * (width - size_w)
        inside = (
            (row_index[:, 0] >= top) & (row_index[:, 0] < top + size_h)
            & (col_index[:, 0] >= left) & (col_index[:, 0] < left + size_w)
        )  # fmt: skip
        inside = inside & (draw(batch, 1, 1) < 0.5)
        x = torch.where(inside[:, None], draw(batch, 3, 1, 1), x)

    # view: a small shift, zoom and turn
    angle = draw(batch, low=-math.radians(6), high=math.radians(6))
    scale = draw(batch, low=0.9, high=1.1)
    theta = torch.zeros(batch, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 1] = scale * angle.cos(), -scale * angle.sin()
    theta[:, 1, 0], theta[:, 1, 1] = scale * angle.sin(), scale * angle.cos()
    theta[:, :, 2] = draw(batch, 2, low=-0.1, high=0.1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    return x.clamp(0.0, 1.0)
