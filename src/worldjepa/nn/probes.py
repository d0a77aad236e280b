"""Probes: small heads trained on the tokens of a frozen encoder to measure what it learned.

Both take tokens [B, N, D] and return [B, num_outputs] (class logits or regression values).
"""

from __future__ import annotations

import torch
from torch import nn

from worldjepa.errors import UserError
from worldjepa.nn.attention import Block, attention


class LinearProbe(nn.Module):
    """Mean-pool the tokens, normalize each feature, then one linear layer.

    The BatchNorm without affine parameters (as in MAE's linear probing) only standardizes each
    feature with batch statistics: frozen features come at very different scales, and without it the
    learning rate that suits one encoder is wrong for another. It adds no capacity (an affine map
    folds into the linear layer), so the probe stays linear.
    """

    def __init__(self, dim: int, num_outputs: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        self.head = nn.Linear(dim, num_outputs)
        nn.init.trunc_normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, N, D], or already pooled features [B, D] -> [B, num_outputs]."""
        pooled = tokens.mean(dim=1) if tokens.dim() == 3 else tokens
        return self.head(self.norm(pooled))


class AttentiveProbe(nn.Module):
    """V-JEPA's attentive probe: one learned query cross-attends to the frozen tokens, then a linear head.

    query [1, 1, D] -> q = query + CrossAttn(query, LN(tokens)) -> q = q + MLP(LN(q)) -> LN -> Linear.
    The heads should equal the encoder's heads. Unlike mean pooling, the query can pick out the few
    tokens that carry the answer (a moving object in a video, a small shape in an image).

    `depth` > 1 is V-JEPA 2's deeper probe (4 in its evaluations): depth - 1 self-attention blocks run
    on the tokens before the query reads them. A single query takes a weighted mean of the tokens, which
    cannot tell which token came with which: "the arm here in frame 1 and there in frame 4" and the
    reverse give one mean; tokens that first attend to each other can carry that relation.
    """

    def __init__(
        self, dim: int, num_heads: int, num_outputs: int, mlp_ratio: float = 4.0, depth: int = 1
    ) -> None:
        super().__init__()
        if depth < 1:
            raise UserError(f"attentive probe depth must be >= 1 (1: V-JEPA's, 4: V-JEPA 2's), got {depth}")
        if dim % num_heads:
            raise UserError(
                f"attentive probe: width {dim} is not divisible by {num_heads} heads; "
                "use the encoder's head count (it divides the encoder width)"
            )
        self.num_heads = num_heads
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio) for _ in range(depth - 1))
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        self.norm_tokens = nn.LayerNorm(dim, eps=1e-6)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.norm_out = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_outputs)
        self._init_weights()

    def _init_weights(self) -> None:
        """Truncated normal (std 0.02) for the query and every linear weight, zero biases."""
        nn.init.trunc_normal_(self.query, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, N, D] -> one attention-pooled vector per example [B, D]."""
        for block in self.blocks:
            tokens = block(tokens)
        batch, num_tokens, dim = tokens.shape
        head_dim = dim // self.num_heads
        query = self.query.expand(batch, -1, -1)  # [B, 1, D]
        q = self.q(query).view(batch, 1, self.num_heads, head_dim).transpose(1, 2)  # [B, h, 1, d]
        kv = self.kv(self.norm_tokens(tokens)).view(batch, num_tokens, 2, self.num_heads, head_dim)
        k, v = kv.permute(2, 0, 3, 1, 4)  # each [B, h, N, d]
        attended = attention(q, k, v)  # [B, h, 1, d]
        x = query + self.proj(attended.transpose(1, 2).reshape(batch, 1, dim))
        x = x + self.mlp(self.norm_mlp(x))
        return x.squeeze(1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, N, D] -> [B, num_outputs]."""
        return self.head(self.norm_out(self.pool(tokens)))
