"""Pictures of JEPA masks: which patches the encoder sees (context) and which it must predict (targets).

Context patches are tinted blue, each target in its own colour, and patches in neither are darkened.
Figures are built with matplotlib's object API (no pyplot, Agg rendering), so this works headless and
leaves the caller's matplotlib backend alone.

    from worldjepa.viz.masks import save_mask_grid
    save_mask_grid("masks.png", batch["image"], batch["context"], batch["targets"], grid=(14, 14))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from torch import Tensor

CONTEXT_COLOR = "tab:blue"
TARGET_COLORS = ("tab:orange", "tab:green", "tab:red", "tab:purple", "tab:olive", "tab:pink", "tab:cyan")
HIDDEN_RGBA = (0.0, 0.0, 0.0, 0.6)  # patches in neither context nor targets


def _to_hwc(image: Tensor | np.ndarray) -> np.ndarray:
    """[3, H, W] or [H, W, 3] (any range, e.g. normalised) -> float [H, W, 3] in [0, 1] for display."""
    x = torch.as_tensor(image).detach().float().cpu()
    if x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
        x = x.permute(1, 2, 0)
    x = x - x.min()
    return (x / x.max().clamp_min(1e-8)).expand(*x.shape[:2], 3).numpy()


def draw_masks(
    ax: Axes,
    image: Tensor | np.ndarray,
    grid: tuple[int, int],
    context: Tensor,
    targets: Sequence[Tensor],
    alpha: float = 0.45,
) -> None:
    """Draw one image with its context patch indices [Kc] and target blocks (each [Kt]) on `ax`.

    Indices are row-major over the (H, W) patch grid; a patch in several targets shows the last one.
    """
    pixels = _to_hwc(image)
    rgba = np.tile(np.array(HIDDEN_RGBA), (grid[0] * grid[1], 1))
    rgba[torch.as_tensor(context).cpu().numpy()] = (*to_rgb(CONTEXT_COLOR), alpha)
    for j, target in enumerate(targets):
        rgba[torch.as_tensor(target).cpu().numpy()] = (*to_rgb(TARGET_COLORS[j % len(TARGET_COLORS)]), alpha)
    height, width = pixels.shape[:2]
    ax.imshow(pixels, extent=(0, width, height, 0))
    ax.imshow(rgba.reshape(*grid, 4), extent=(0, width, height, 0), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_video_masks(
    axes: Sequence[Axes],
    video: Tensor | np.ndarray,
    grid: tuple[int, int, int],
    context: Tensor,
    targets: Sequence[Tensor],
    tubelet_size: int = 2,
) -> None:
    """Draw a clip [C, T, H, W] or [T, H, W, C] with token indices over the (T', H', W') token grid:
    one panel per tubelet (its first frame), `axes` holding T' panels."""
    clip = torch.as_tensor(video)
    if clip.shape[0] in (1, 3) and clip.shape[-1] not in (1, 3):
        clip = clip.transpose(0, 1)  # [C, T, H, W] -> [T, C, H, W]
    plane = grid[1] * grid[2]
    context = torch.as_tensor(context)
    targets = [torch.as_tensor(t) for t in targets]
    for t, ax in enumerate(axes):
        draw_masks(
            ax,
            clip[t * tubelet_size],
            grid[1:],
            context[context // plane == t] % plane,
            [target[target // plane == t] % plane for target in targets],
        )
        ax.set_title(f"t={t}", fontsize=8)


def save_mask_grid(
    path: str | Path,
    pixels: Tensor,
    context: Tensor | Sequence[Tensor],
    targets: Tensor | Sequence[Tensor],
    grid: tuple[int, ...],
    num_samples: int = 4,
    tubelet_size: int = 2,
) -> Path:
    """Save a PNG of the masks of the first `num_samples` samples of a collated batch.

    Images: pixels [B, 3, H, W], grid (H', W'), context [B, Kc], targets [num_targets, B, Kt]; one panel
    per sample. Videos: pixels [B, C, T, H, W], grid (T', H', W'), context and targets lists over mask
    generators of [B, K]; one row per (sample, generator), one panel per tubelet.
    """
    n = min(num_samples, pixels.shape[0])
    if len(grid) == 2:
        fig = Figure(figsize=(2.2 * n, 2.4))
        axes = fig.subplots(1, n, squeeze=False)[0]
        for b, ax in enumerate(axes):
            draw_masks(ax, pixels[b], grid, context[b], [t[b] for t in targets])
            ax.set_title(f"sample {b}", fontsize=8)
    else:
        rows = [(b, g) for b in range(n) for g in range(len(context))]
        fig = Figure(figsize=(1.6 * grid[0], 1.7 * len(rows)))
        axes = fig.subplots(len(rows), grid[0], squeeze=False)
        for row, (b, g) in zip(axes, rows, strict=True):
            draw_video_masks(row, pixels[b], grid, context[g][b], [targets[g][b]], tubelet_size)
            row[0].set_ylabel(f"sample {b}\ngenerator {g}", fontsize=8)
    fig.suptitle("context (blue), targets (other colours), dropped (dark)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
