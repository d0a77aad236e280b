"""3D rotary position embedding (RoPE) of V-JEPA 2.

The head dimension is split [t | h | w | rest]; each of t, h, w gets 2*((head_dim // 3) // 2)
channels rotated by its own integer grid coordinate, `rest` is left as is. On a sub-vector of size
D, channel pair i turns by the angle pos * omega_i with omega_i = theta^(-i / (D/2)).

`compat=True` reproduces the released V-JEPA 2 weights: the official code lays the angles out as
[f0..fn, f0..fn] while it rotates interleaved pairs (x0, x1), (x2, x3), ..., so the two channels
of a pair see different frequencies. That map is not a rotation (it does not preserve norms), but
it is what the released weights were trained with. `compat=False`, the default for models trained
from scratch, turns each pair by one matched angle: a true rotation, relative-position attention.
The two differ in a single line of `rope_angles`.

A position of 0 leaves its channels unchanged (cos 0 = 1, sin 0 = 0), so "temporal rotation only"
(action and state tokens of the AC predictor) is the position (t, 0, 0).
"""

import torch
from torch import Tensor, nn

from worldjepa.errors import UserError


def token_coords(ids: Tensor, height: int, width: int) -> Tensor:
    """Token indices [...] in (t, h, w) row-major order -> integer coordinates [..., 3]."""
    per_frame = height * width
    return torch.stack([ids // per_frame, (ids % per_frame) // width, ids % width], dim=-1)


def rope_angles(
    pos: Tensor, dim: int, compat: bool = False, theta: float = 10000.0, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """Positions [...] -> (cos, sin), each [..., dim], for rotating a sub-vector of size dim."""
    omega = 1.0 / theta ** (torch.arange(dim // 2, dtype=dtype, device=pos.device) / (dim / 2))
    freq = pos.to(dtype)[..., None] * omega  # [..., dim/2]
    freq = torch.cat([freq, freq], dim=-1) if compat else freq.repeat_interleave(2, dim=-1)
    return freq.cos(), freq.sin()


def rotate_pairs(x: Tensor) -> Tensor:
    """Partner of every channel: (x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)."""
    even, odd = x.unflatten(-1, (-1, 2)).unbind(-1)
    return torch.stack([-odd, even], dim=-1).flatten(-2)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x [..., N, D] with angles from `rope_angles` / `RoPE3D` (broadcast against x)."""
    return x * cos + rotate_pairs(x) * sin


def rotate(x: Tensor, pos: Tensor, compat: bool = False, theta: float = 10000.0) -> Tensor:
    """Rotate the whole last dimension of x [..., N, D] by positions pos [..., N] (one axis)."""
    cos, sin = rope_angles(pos, x.shape[-1], compat, theta, x.dtype)
    return apply_rope(x, cos, sin)


class RoPE3D(nn.Module):
    """(t, h, w) positions -> per-channel (cos, sin) for one attention head, shared by all blocks."""

    def __init__(self, head_dim: int, theta: float = 10000.0, compat: bool = False):
        super().__init__()
        self.head_dim, self.theta, self.compat = head_dim, theta, compat
        self.axis_dim = 2 * ((head_dim // 3) // 2)
        if self.axis_dim == 0 or head_dim % 2:  # channels rotate in pairs
            raise UserError(
                f"3D RoPE needs an even head dimension (width / heads) of at least 6, got {head_dim}: change "
                "the width or the number of heads"
            )

    def forward(self, pos: Tensor, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """pos [B|1, N, 3] -> (cos, sin), each [B|1, 1, N, head_dim], ready to broadcast over heads.

        The `rest` channels get cos 1 and sin 0, so `apply_rope` passes them through unchanged.
        """
        parts = [rope_angles(pos[..., i], self.axis_dim, self.compat, self.theta, dtype) for i in range(3)]
        rest = self.head_dim - 3 * self.axis_dim
        ones = pos.new_ones((*pos.shape[:-1], rest), dtype=dtype)
        cos = torch.cat([p[0] for p in parts] + [ones], dim=-1)
        sin = torch.cat([p[1] for p in parts] + [torch.zeros_like(ones)], dim=-1)
        return cos.unsqueeze(-3), sin.unsqueeze(-3)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, axis_dim={self.axis_dim}, theta={self.theta}, compat={self.compat}"
