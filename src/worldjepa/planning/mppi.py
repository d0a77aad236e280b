"""Model predictive path integral control (MPPI) as a latent planner.

Instead of keeping a hard set of elites, MPPI averages every candidate weighted by
softmax(-energy / temperature): a low temperature approaches "take the best", a high one the plain
mean. The sampling noise keeps a fixed std, as in the classic algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from worldjepa.errors import UserError
from worldjepa.planning.sampling_planner import SamplingPlanner


class MPPI(SamplingPlanner):
    """MPPI over action sequences [H, A]; `temperature` is lambda, in energy units."""

    def __init__(
        self,
        action_dim: int,
        horizon: int = 5,
        samples: int = 300,
        iterations: int = 10,
        temperature: float = 0.01,
        noise_std: float = 1.0,
        low: float | Sequence[float] | Tensor | None = None,
        high: float | Sequence[float] | Tensor | None = None,
        seed: int = 0,
        action_cost: float = 0.0,
    ) -> None:
        super().__init__(action_dim, horizon, samples, iterations, noise_std, low, high, seed, action_cost)
        if temperature <= 0:
            raise UserError(f"MPPI temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def _refit(
        self, candidates: Tensor, energies: Tensor, mean: Tensor, std: Tensor
    ) -> tuple[Tensor, Tensor]:
        weights = (-energies / self.temperature).softmax(0)  # [C]
        return (weights[:, None, None] * candidates).sum(0), std
