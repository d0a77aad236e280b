"""Collapse monitors: is the encoder still producing diverse features?

A JEPA can collapse to a constant (or low-dimensional) representation that predicts itself perfectly.
Two cheap signals, computed at logging steps only:
- RankMe (Garrido et al., 2023): exp of the entropy of the normalised singular values of the
  embedding matrix; ~D for well-spread features, ~1 after collapse to a line.
- mean per-dimension standard deviation: drops to ~0 under complete collapse.
"""

from __future__ import annotations

import torch

MAX_ROWS = 4096  # bounds the SVD cost at logging steps


@torch.no_grad()
def rankme(z: torch.Tensor, eps: float = 1e-7) -> float:
    """Effective rank of embeddings `z` [N, D] (or [..., D], flattened): exp(H(sigma / ||sigma||_1 + eps))."""
    z = z.detach().reshape(-1, z.shape[-1])[:MAX_ROWS].float()
    if not torch.isfinite(z).all():  # the SVD would fail; the trainer reports the divergence itself
        return float("nan")
    s = torch.linalg.svdvals(z)
    p = s / s.sum().clamp_min(1e-12) + eps
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def mean_std(z: torch.Tensor) -> float:
    """Mean over dimensions of the per-dimension standard deviation of `z` [N, D] (or [..., D])."""
    z = z.detach().reshape(-1, z.shape[-1])[:MAX_ROWS].float()
    return float(z.std(dim=0).mean())


def collapse_metrics(z: torch.Tensor) -> dict[str, float]:
    """The monitor columns of the training log: `rankme` and `emb_std`."""
    return {"rankme": rankme(z), "emb_std": mean_std(z)}
