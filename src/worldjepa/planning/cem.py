"""The cross-entropy method (CEM), the planner of V-JEPA 2-AC.

Each iteration keeps the `top_k` lowest-energy candidates (the elites) and moves the Gaussian toward
their mean and standard deviation, with momentum: new = momentum * old + (1 - momentum) * elite.
The defaults are the released V-JEPA 2-AC planning settings.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from worldjepa.errors import UserError
from worldjepa.planning.sampling_planner import SamplingPlanner


class CEM(SamplingPlanner):
    """CEM over action sequences [H, A]; the std never drops below `min_std` (keeps exploring)."""

    def __init__(
        self,
        action_dim: int,
        horizon: int = 2,
        samples: int = 400,
        top_k: int = 10,
        iterations: int = 10,
        momentum: float = 0.15,
        init_std: float = 1.0,
        min_std: float = 0.0,
        low: float | Sequence[float] | Tensor | None = None,
        high: float | Sequence[float] | Tensor | None = None,
        seed: int = 0,
        action_cost: float = 0.0,
    ) -> None:
        super().__init__(action_dim, horizon, samples, iterations, init_std, low, high, seed, action_cost)
        if not 1 <= top_k <= samples:
            raise UserError(f"CEM top_k must be in [1, samples={samples}], got {top_k}")
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
