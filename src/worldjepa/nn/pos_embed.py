"""Fixed sin-cos position embeddings of I-JEPA (2D) and V-JEPA (3D).

The tables reproduce the official channel layout exactly, because released weights were trained
against it: in 2D the first half of the channels encodes the column (w) and the second half the
row (h); in 3D the parts are concatenated [t | h | w] and the result is cut to `dim` channels.
Every 1-D part is [sin, cos] with omega_i = 10000^(-i / (d/2)). Tables are built in float64.
"""

import math

import torch
from torch import Tensor

from worldjepa.errors import UserError


def sincos_1d(dim: int, pos: Tensor) -> Tensor:
    """Positions [N] -> [N, dim] = [sin(pos * omega), cos(pos * omega)]."""
    if dim % 2:
        raise UserError(f"a sin-cos position embedding needs an even width, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = pos.to(torch.float64)[:, None] * omega
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def _grid(*sizes: int) -> list[Tensor]:
    """Flattened integer coordinates of a row-major grid, one [prod(sizes)] tensor per axis."""
    axes = torch.meshgrid(*(torch.arange(s) for s in sizes), indexing="ij")
    return [a.flatten() for a in axes]


def sincos_2d(dim: int, height: int, width: int) -> Tensor:
    """I-JEPA table [H*W, dim]: first half encodes w, second half h (the official meshgrid order)."""
    if dim % 4 or dim == 0:  # each half is [sin, cos]
        raise UserError(f"a 2D sin-cos position embedding needs a width divisible by 4, got {dim}")
    h, w = _grid(height, width)
    return torch.cat([sincos_1d(dim // 2, w), sincos_1d(dim // 2, h)], dim=1)


def sincos_3d(dim: int, depth: int, height: int, width: int, uniform_power: bool = True) -> Tensor:
    """V-JEPA table [T*H*W, dim], channels [t | h | w] cut to `dim`.

    uniform_power: every axis gets 2*ceil(dim/6) channels (the released configs); otherwise t gets
    dim//2 and h, w get dim//4 each.
    """
    if uniform_power:
        t_dim = h_dim = w_dim = 2 * math.ceil(dim / 6)
    else:
        t_dim, h_dim, w_dim = dim // 2, dim // 4, dim // 4
    t, h, w = _grid(depth, height, width)
    table = torch.cat([sincos_1d(t_dim, t), sincos_1d(h_dim, h), sincos_1d(w_dim, w)], dim=1)
    return table[:, :dim]


def sincos_table(dim: int, grid: tuple[int, int, int], video: bool, uniform_power: bool = True) -> Tensor:
    """Table [T*H*W, dim] for a token grid (T, H, W): 3D for video models, 2D (T == 1) for image models."""
    depth, height, width = grid
    if video:
        return sincos_3d(dim, depth, height, width, uniform_power)
    if depth != 1:
        raise ValueError(f"an image model has one frame of tokens, got a grid of {depth}")
    return sincos_2d(dim, height, width)


def table_for_grid(
    stored: Tensor,
    stored_grid: tuple[int, int, int],
    grid: tuple[int, int, int],
    video: bool,
    uniform_power: bool,
) -> Tensor:
    """The stored table [1, N, D] when the grid is the configured one, else a fresh table for `grid`.

    The official code interpolates its table to a new grid; a fixed sin-cos table can simply be
    evaluated at the new integer positions instead, which is what we do.
    """
    if grid == stored_grid:
        return stored
    return sincos_table(stored.shape[-1], grid, video, uniform_power).to(stored)[None]
