"""Model predictive path integral control (MPPI) as a latent planner.

Instead of keeping a hard set of elites, MPPI averages every candidate weighted by
softmax(-energy / temperature): a low temperature approaches "take the best", a high one the plain
mean. The sampling noise keeps a fixed std, as in the classic algorithm.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from worldjepa.errors import UserError
from worldjepa.planning.sampling_planner import SamplingPlanner


class MPPI(SamplingPlanner):
    """MPPI over action sequences [H, A]; `temperature` is lambda, in energy units."""

    def __init__(self, action_dim: int, *, temperature: float, **search: Any) -> None:
        """`search`: horizon, samples, iterations, init_std (the noise std, fixed), seed, action_cost,
        noise_beta, keep_elites, zero_candidate, low, high (see `SamplingPlanner`)."""
        super().__init__(action_dim, **search)
        if temperature <= 0:
            raise UserError(f"MPPI temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def _refit(
        self, candidates: Tensor, energies: Tensor, mean: Tensor, std: Tensor
    ) -> tuple[Tensor, Tensor]:
        weights = (-energies / self.temperature).softmax(0)  # [C]
        return (weights[:, None, None] * candidates).sum(0), std
