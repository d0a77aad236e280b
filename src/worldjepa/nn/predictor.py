"""The masked JEPA predictor of I-JEPA, V-JEPA and V-JEPA 2.

A narrow ViT that sees the context tokens (encoder outputs, projected to its width, plus their
positions) and one mask token per target position (a learned vector plus the target's position),
and predicts the encoder representation at every target position.

Mask tokens: `mask_tokens` holds N learned tokens [1, 1, d]; `mask_index` picks one (V-JEPA: one per
mask generator; V-JEPA 2: one per clip-length group). I-JEPA's single `mask_token` is
`mask_tokens.0` (worldjepa.interop maps the key).

Order of tokens: the official V-JEPA 2 predictor sorts context and targets by position before its
blocks and restores the order after. Without an attention mask every layer is permutation-
equivariant, so sorting changes results only at float round-off (well below 1e-5 in the parity
tests); we do not sort.

V-JEPA 2.1 options: `num_levels` > 1 (deep self-supervision) takes the encoder's tokens of several
levels stacked on the channel axis, fuses them with an MLP, and predicts every level (stacked the
same way); `return_context` (the dense loss) also returns the predictions at the context positions.
"""

from typing import Literal

import torch
from torch import Tensor, nn

from worldjepa.errors import UserError
from worldjepa.nn.attention import LAYER_NORM_EPS, Block, init_weights
from worldjepa.nn.pos_embed import sincos_table, table_for_grid
from worldjepa.nn.rope import RoPE3D, token_coords
from worldjepa.nn.vit import Grid, gather_tokens, token_grid


class MaskedPredictor(nn.Module):
    """`forward(context, keep_context, keep_target)` -> predicted target tokens [G*B, Kt, D]."""

    def __init__(
        self,
        embed_dim: int,
        predictor_embed_dim: int,
        depth: int,
        num_heads: int,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        num_frames: int = 1,
        tubelet_size: int = 2,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        num_mask_tokens: int = 1,
        zero_init_mask_tokens: bool = True,
        pos_embed: Literal["sincos", "rope"] = "sincos",
        uniform_power: bool = True,
        rope_compat: bool = False,
        init_std: float = 0.02,
        num_levels: int = 1,
    ):
        super().__init__()
        self.grid = token_grid(img_size, patch_size, num_frames, tubelet_size)
        self.video, self.uniform_power, self.num_levels = num_frames > 1, uniform_power, num_levels
        if num_levels == 1:
            self.predictor_embed = nn.Linear(embed_dim, predictor_embed_dim)
        else:
            self.predictor_embed = nn.Sequential(
                nn.Linear(embed_dim * num_levels, predictor_embed_dim),
                nn.GELU(),
                nn.Linear(predictor_embed_dim, predictor_embed_dim),
            )
        self.mask_tokens = nn.ParameterList(
            nn.Parameter(torch.zeros(1, 1, predictor_embed_dim)) for _ in range(num_mask_tokens)
        )
        head_dim = predictor_embed_dim // num_heads
        self.rope = RoPE3D(head_dim, compat=rope_compat) if pos_embed == "rope" else None
        if pos_embed == "sincos":
            table = sincos_table(predictor_embed_dim, self.grid, self.video, uniform_power)
            self.register_buffer("predictor_pos_embed", table.float()[None])  # [1, N, d], fixed
        elif pos_embed != "rope":
            raise UserError(f"pos_embed must be 'sincos' or 'rope', got {pos_embed!r}")
        self.predictor_blocks = nn.ModuleList(
            Block(predictor_embed_dim, num_heads, mlp_ratio, qkv_bias) for _ in range(depth)
        )
        self.predictor_norm = nn.LayerNorm(predictor_embed_dim, eps=LAYER_NORM_EPS)
        self.predictor_proj = nn.Linear(predictor_embed_dim, embed_dim * num_levels)
        init_weights(self, self.predictor_blocks, init_std)
        if not zero_init_mask_tokens:  # I-JEPA draws its mask token like a weight
            for token in self.mask_tokens:
                nn.init.trunc_normal_(token, std=init_std)

    def forward(
        self,
        context: Tensor,
        keep_context: Tensor,
        keep_target: Tensor,
        mask_index: int = 0,
        grid: Grid | None = None,
        return_context: bool = False,
    ) -> Tensor:
        """Encoder tokens context [B, Kc, D] at keep_context [B, Kc] -> predictions [G*B, Kt, D] at
        keep_target [G*B, Kt].

        G > 1 is I-JEPA's layout: row g*B + b predicts target block g of sample b from context b. The
        context is projected once and then repeated G times, as the official I-JEPA predictor does.
        grid: the (T, H, W) token grid the indices refer to; defaults to the configured one.
        With num_levels > 1, context is [B, Kc, D * num_levels] and so is each prediction.
        return_context: predictions at the context positions first: [G*B, Kc + Kt, D].
        """
        grid = self.grid if grid is None else grid
        batch, num_targets = keep_target.shape
        groups, rest = divmod(batch, context.shape[0])
        if rest or not groups:
            raise ValueError(f"{batch} target rows are not a multiple of the {context.shape[0]} context rows")
        ctx = self.predictor_embed(context)  # [B, Kc, d]
        tgt = self.mask_tokens[mask_index % len(self.mask_tokens)].expand(batch, num_targets, -1)
        if self.rope is None:
            table = table_for_grid(self.predictor_pos_embed, self.grid, grid, self.video, self.uniform_power)
            ctx = ctx + gather_tokens(table.expand(len(ctx), -1, -1), keep_context)
            tgt = tgt + gather_tokens(table.expand(batch, -1, -1), keep_target)
        if groups > 1:
            ctx, keep_context = ctx.repeat(groups, 1, 1), keep_context.repeat(groups, 1)  # [G*B, Kc, ...]
        rope = None
        if self.rope is not None:
            positions = token_coords(torch.cat([keep_context, keep_target], dim=1), grid[1], grid[2])
            rope = self.rope(positions, ctx.dtype)
        x = torch.cat([ctx, tgt], dim=1)  # [G*B, Kc + Kt, d]
        for block in self.predictor_blocks:
            x = block(x, rope)
        x = x if return_context else x[:, -num_targets:]
        return self.predictor_proj(self.predictor_norm(x))
