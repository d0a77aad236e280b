"""The cross-entropy method (CEM), the planner of V-JEPA 2-AC.

Each iteration keeps the `top_k` lowest-energy candidates (the elites) and moves the Gaussian toward
their mean and standard deviation, with momentum: new = momentum * old + (1 - momentum) * elite.
V-JEPA 2-AC's released settings: horizon 2, 400 samples, top 10, 10 iterations, momentum 0.15.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from worldjepa.errors import UserError
from worldjepa.planning.sampling_planner import SamplingPlanner


class CEM(SamplingPlanner):
    """CEM over action sequences [H, A]; the std never drops below `min_std` (keeps exploring)."""

    def __init__(
        self,
        action_dim: int,
        *,
        top_k: int,
        momentum: float,
        min_std: float,
        **search: Any,
    ) -> None:
        """`search`: horizon, samples, iterations, init_std, seed, action_cost, noise_beta,
        keep_elites, zero_candidate, low, high (see `SamplingPlanner`)."""
        super().__init__(action_dim, **search)
        if not 1 <= top_k <= self.samples:
            raise UserError(f"CEM top_k must be in [1, samples={self.samples}], got {top_k}")
        if not 0.0 <= momentum < 1.0:
            raise UserError(f"CEM momentum must be in [0, 1), got {momentum}")
        self.top_k, self.momentum, self.min_std = top_k, momentum, min_std

    def _refit(
        self, candidates: Tensor, energies: Tensor, mean: Tensor, std: Tensor
    ) -> tuple[Tensor, Tensor]:
        elites = candidates[energies.topk(self.top_k, largest=False).indices]  # [K, H, A]
        elite_std = elites.std(0, correction=0)
        mean = self.momentum * mean + (1 - self.momentum) * elites.mean(0)
        std = (self.momentum * std + (1 - self.momentum) * elite_std).clamp_min(self.min_std)
        return mean, std
