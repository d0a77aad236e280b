"""Vision Transformer encoder of I-JEPA (image patches), V-JEPA and V-JEPA 2 (video tubelets).

No cls token. Tokens are ordered (t, h, w) row-major: index = t*H*W + h*W + w. Position is either a
fixed sin-cos table added to the patch embeddings (`pos_embed="sincos"`, 2D for images, 3D for
video) or 3D RoPE inside every attention layer (`pos_embed="rope"`, V-JEPA 2). JEPA masking keeps a
subset of tokens: `keep` [B, K] holds the indices to keep and is applied with a gather after the
position embedding, so every kept token still knows where it came from.

`levels` (V-JEPA 2.1's deep self-supervision) also returns the outputs of intermediate blocks, each
through the same final norm (as the official encoder's `out_layers` does), stacked on the channel axis.
"""

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from worldjepa.errors import UserError
from worldjepa.nn.attention import LAYER_NORM_EPS, Block, init_weights
from worldjepa.nn.pos_embed import sincos_table, table_for_grid
from worldjepa.nn.rope import RoPE3D, token_coords

Grid = tuple[int, int, int]  # (T, H, W) in tokens


def as_pair(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """224 -> (224, 224); [224] -> (224, 224) (the I-JEPA config style); (h, w) stays."""
    if isinstance(size, int):
        return size, size
    return (size[0], size[0]) if len(size) == 1 else (size[0], size[1])


def token_grid(
    img_size: int | tuple[int, int], patch_size: int, num_frames: int = 1, tubelet_size: int = 2
) -> Grid:
    """Token grid (T, H, W) of an input size; T = 1 for image models (num_frames == 1).

    An input the patch (or tubelet) size does not divide is a UserError that says how to fix it.
    """
    height, width = as_pair(img_size)
    p = patch_size
    if height % p or width % p:
        suggest = f"{-(-height // p) * p}x{-(-width // p) * p}"
        raise UserError(
            f"image size {height}x{width} is not divisible by patch size {p}; "
            f"resize to a multiple of {p} (e.g. {suggest}) or change model.patch_size"
        )
    if num_frames > 1 and num_frames % tubelet_size:
        raise UserError(
            f"{num_frames} frames is not divisible by tubelet size {tubelet_size}; "
            f"use a multiple of {tubelet_size} frames or change model.tubelet_size"
        )
    depth = num_frames // tubelet_size if num_frames > 1 else 1
    return depth, height // p, width // p


def gather_tokens(x: Tensor, keep: Tensor) -> Tensor:
    """x [B, N, D], keep [B, K] int64 -> x[b, keep[b]] as [B, K, D]."""
    return torch.gather(x, 1, keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def grid_positions(keep: Tensor | None, grid: Grid, device: torch.device) -> Tensor:
    """(t, h, w) coordinates of the kept tokens: [B, K, 3], or [1, N, 3] for all tokens."""
    ids = torch.arange(grid[0] * grid[1] * grid[2], device=device)[None] if keep is None else keep
    return token_coords(ids, grid[1], grid[2])


class PatchEmbed(nn.Module):
    """Non-overlapping patches (Conv2d) or tubelets (Conv3d, kernel (tubelet, p, p)) -> tokens."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, tubelet_size: int | None):
        super().__init__()
        if tubelet_size is None:
            self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        else:
            kernel = (tubelet_size, patch_size, patch_size)
            self.proj = nn.Conv3d(in_chans, embed_dim, kernel, stride=kernel)

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, H, W] or [B, C, T, H, W] -> [B, N, D] in (t, h, w) order."""
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """ViT encoder; `forward(x, keep)` returns the normed tokens [B, N or K, D]."""

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        num_frames: int = 1,
        tubelet_size: int = 2,
        pos_embed: Literal["sincos", "rope"] = "sincos",
        uniform_power: bool = True,
        rope_compat: bool = False,
        init_std: float = 0.02,
    ):
        super().__init__()
        self.patch_size, self.in_chans, self.tubelet_size = patch_size, in_chans, tubelet_size
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.video = num_frames > 1
        self.uniform_power = uniform_power
        self.grid = token_grid(img_size, patch_size, num_frames, tubelet_size)
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, tubelet_size if self.video else None)
        self.rope = RoPE3D(embed_dim // num_heads, compat=rope_compat) if pos_embed == "rope" else None
        if pos_embed == "sincos":
            table = sincos_table(embed_dim, self.grid, self.video, uniform_power)
            self.register_buffer("pos_embed", table.float()[None])  # [1, N, D], fixed
        elif pos_embed != "rope":
            raise UserError(f"pos_embed must be 'sincos' or 'rope', got {pos_embed!r}")
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, qkv_bias) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        init_weights(self, self.blocks, init_std)

    def prepare_input(self, x: Tensor) -> tuple[Tensor, Grid]:
        """Check x and return it with its token grid (T, H, W), which may differ from the config's.

        A video model also takes images [B, C, H, W]: each is repeated into one tubelet, as V-JEPA 2
        encodes images and single frames.
        """
        if self.video and x.ndim == 4:
            x = x.unsqueeze(2).expand(-1, -1, self.tubelet_size, -1, -1)
        expected = "[B, C, T, H, W] or [B, C, H, W]" if self.video else "[B, C, H, W]"
        if x.ndim != (5 if self.video else 4):
            raise UserError(f"input has shape {tuple(x.shape)}; this encoder expects {expected}")
        if x.shape[1] != self.in_chans:
            raise UserError(
                f"input has {x.shape[1]} channels but the model expects {self.in_chans}; "
                f"pass {expected} with C={self.in_chans} or change model.in_chans"
            )
        frames = x.shape[2] if self.video else 1
        return x, token_grid(tuple(x.shape[-2:]), self.patch_size, frames, self.tubelet_size)

    def check_levels(self, levels: Sequence[int], name: str = "levels") -> None:
        """Intermediate levels must be earlier blocks, 1..depth-1: the last block's output always comes."""
        depth = len(self.blocks)
        if any(not 1 <= level < depth for level in levels):
            raise UserError(
                f"{name} {list(levels)} must be blocks 1..{depth - 1} of the {depth}-block encoder "
                "(the last block always comes)"
            )

    def forward(self, x: Tensor, keep: Tensor | None = None, levels: Sequence[int] = ()) -> Tensor:
        """x [B, C, H, W] or [B, C, T, H, W]; keep [B, K] int64 token indices -> [B, K (or N), D].

        levels: 1-based indices of earlier blocks whose normed outputs come first, then the last
        block's: [B, K, D * (len(levels) + 1)].
        """
        self.check_levels(levels)
        x, grid = self.prepare_input(x)
        x = self.patch_embed(x)  # [B, N, D]
        if self.rope is None:
            x = x + table_for_grid(self.pos_embed, self.grid, grid, self.video, self.uniform_power)
        if keep is not None:
            x = gather_tokens(x, keep)
        rope = None if self.rope is None else self.rope(grid_positions(keep, grid, x.device), x.dtype)
        outputs = []
        for index, block in enumerate(self.blocks, start=1):
            x = block(x, rope)
            if index in levels:
                outputs.append(self.norm(x))
        return torch.cat([*outputs, self.norm(x)], dim=-1) if outputs else self.norm(x)
