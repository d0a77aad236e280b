"""The network sizes worldjepa knows by name, in one table (timm's registry idea).

Presets name a size (`model.size: large`) instead of repeating its width, depth and heads, and the
checkpoint loader (`worldjepa.interop.architecture`) reads the same table to tell a released network
from its weights: a weight shape gives width and depth, never the number of heads.

Head counts depend on the position encoding for the released ViT-g (I-JEPA's sin-cos ViT-g has 16
heads, V-JEPA 2's RoPE ViT-g 22) and for the tiny CPU sizes (RoPE splits a head into thirds, so the
192-wide tiny encoder has 4 heads of 48 = 3 x 16 with RoPE, 3 heads of 64 with sin-cos).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from worldjepa.errors import UserError

PosEmbed = Literal["sincos", "rope"]


@dataclass(frozen=True)
class Size:
    """A transformer's shape; `name` is the released family name (None for worldjepa's own sizes)."""

    embed_dim: int
    depth: int
    heads: int  # with sin-cos position tables (I-JEPA, V-JEPA)
    rope_heads: int  # with 3D RoPE (V-JEPA 2)
    mlp_ratio: float = 4.0
    name: str | None = None

    def num_heads(self, pos_embed: PosEmbed) -> int:
        return self.rope_heads if pos_embed == "rope" else self.heads


ENCODERS: dict[str, Size] = {
    "tiny": Size(192, 6, 3, 4),
    "small": Size(384, 12, 6, 6, name="ViT-S"),
    "base": Size(768, 12, 12, 12, name="ViT-B"),
    "large": Size(1024, 24, 16, 16, name="ViT-L"),
    "huge": Size(1280, 32, 16, 16, name="ViT-H"),
    "giant": Size(1408, 40, 16, 22, mlp_ratio=48 / 11, name="ViT-g"),
}
#: Masked predictors: the released one is 384 wide and 12 deep (heads: the encoder's 16 for I-JEPA and
#: V-JEPA, 12 for V-JEPA 2).
PREDICTORS: dict[str, Size] = {
    "tiny": Size(96, 3, 3, 4),
    "paper": Size(384, 12, 16, 12, name="released"),
}
#: Action-conditioned predictors (V-JEPA 2-AC: 1024 wide, 24 deep, 16 heads).
AC_PREDICTORS: dict[str, Size] = {
    "tiny": Size(192, 4, 4, 4),
    "paper": Size(1024, 24, 16, 16, name="released"),
}


def lookup(table: dict[str, Size], name: str, what: str) -> Size:
    """The size called `name` in `table`, or a UserError listing the names."""
    if name not in table:
        raise UserError(f"unknown {what} size {name!r}; use one of {', '.join(table)}")
    return table[name]


def released(table: dict[str, Size], embed_dim: int, depth: int) -> Size | None:
    """The released size of this width and depth in `table`, if there is one."""
    return next((s for s in table.values() if s.name and (s.embed_dim, s.depth) == (embed_dim, depth)), None)
