"""Transformer pieces shared by every JEPA network: attention, MLP, pre-norm block, weight init.

Parameter names follow the official checkpoints (norm1, attn.qkv, attn.proj, norm2, mlp.fc1,
mlp.fc2) so released state dicts load after their prefix is stripped.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worldjepa.errors import UserError
from worldjepa.nn.rope import apply_rope

LAYER_NORM_EPS = 1e-6
#: CPU attention over at most this many keys (by dtype) runs explicitly (q.k^T -> softmax -> .v): there
#: PyTorch's fused kernel (a flash kernel) is slower for a training step, most of all its bf16 backward
#: (53 % of a tiny I-JEPA step). Measured by benchmarks/attention_kernels.py (2 cores: explicit 1.9x at
#: 64 keys in float32 and bfloat16, 1.1-1.9x up to 256 keys in bfloat16, slower beyond); GPUs keep the
#: fused kernels.
EXPLICIT_MAX_KEYS = {torch.float32: 64, torch.bfloat16: 256}

Rope = tuple[Tensor, Tensor]  # (cos, sin), each [B|1, 1, N, head_dim]
#: Step-by-step decoding: per block, the (keys, values) of the tokens run so far, each [B, heads, L, d].
KVCache = list[tuple[Tensor, Tensor]]


def use_explicit_attention(keys: Tensor) -> bool:
    """Whether attention over `keys` [..., L, d] runs explicitly (see EXPLICIT_MAX_KEYS)."""
    return keys.device.type == "cpu" and keys.shape[-2] <= EXPLICIT_MAX_KEYS.get(keys.dtype, 0)


def explicit_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None) -> Tensor:
    """softmax(q k^T / sqrt(d), masked where attn_mask is False) v, as the official JEPA code writes it;
    under autocast the softmax runs in float32."""
    scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    return scores.softmax(dim=-1) @ v


def attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None) -> Tensor:
    """Scaled dot-product attention [B, h, N, d] with the kernel that is fastest where it runs."""
    if use_explicit_attention(k):
        return explicit_attention(q, k, v, attn_mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


class Attention(nn.Module):
    """Multi-head self-attention (scale head_dim^-0.5; the kernel is chosen by `attention`)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise UserError(
                f"width {dim} is not divisible by {num_heads} heads: choose a head count that divides it"
            )
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,
        rope: Rope | None = None,
        attn_mask: Tensor | None = None,
        cache: KVCache | None = None,
        index: int = 0,
    ) -> Tensor:
        """x [B, N, D] -> [B, N, D]. rope rotates q and k; attn_mask [N, N] bool, True = may attend.
        cache: x also attends to the cached keys/values of block `index`, and its own are appended."""
        q, k, v = self.qkv(x).unflatten(-1, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)  # [B, h, N, d]
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is not None:
            if index < len(cache):
                k, v = torch.cat([cache[index][0], k], dim=2), torch.cat([cache[index][1], v], dim=2)
                cache[index] = (k, v)
            else:
                cache.append((k, v))
        x = attention(q, k, v, attn_mask)
        return self.proj(x.transpose(1, 2).flatten(2))


class MLP(nn.Module):
    """fc1 -> GELU -> fc2."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(
        self,
        x: Tensor,
        rope: Rope | None = None,
        attn_mask: Tensor | None = None,
        cache: KVCache | None = None,
        index: int = 0,
    ) -> Tensor:
        """x [B, N, D] -> [B, N, D]; `cache` and `index` as in `Attention.forward`."""
        x = x + self.attn(self.norm1(x), rope, attn_mask, cache, index)
        return x + self.mlp(self.norm2(x))


def init_weights(model: nn.Module, blocks: nn.ModuleList, std: float = 0.02) -> None:
    """The JEPA init, for every network in one place.

    Linear and conv weights trunc-normal(std), biases 0, LayerNorm 1/0; then, as the official code
    does, the residual output layers of block l (attn.proj, mlp.fc2) are divided by sqrt(2 l) so
    the residual stream does not grow with depth.
    """
    for m in model.modules():
        if isinstance(m, nn.Linear | nn.Conv2d | nn.Conv3d):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for layer_id, block in enumerate(blocks, start=1):
        block.attn.proj.weight.data.div_(math.sqrt(2.0 * layer_id))
        block.mlp.fc2.weight.data.div_(math.sqrt(2.0 * layer_id))
