"""Optional collapse regularizers on embeddings [N, D].

JEPA methods avoid representational collapse with an EMA target encoder and a narrow predictor. Peers
add an explicit regularizer instead (EB-JEPA, PLDM: VICReg variance/covariance; LeJEPA: SIGReg). Both
are offered here as options of every method; neither is used by the faithful I-JEPA / V-JEPA presets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def vicreg_variance(z: Tensor, eps: float = 1e-4) -> Tensor:
    """Hinge on the per-dimension std: mean(relu(1 - std)). z: [N, D]."""
    std = torch.sqrt(z.float().var(dim=0) + eps)
    return torch.relu(1.0 - std).mean()


def vicreg_covariance(z: Tensor) -> Tensor:
    """Sum of squared off-diagonal covariances divided by D: decorrelates dimensions. z: [N, D]."""
    z = z.float()
    n, d = z.shape
    z = z - z.mean(dim=0)
    cov = (z.T @ z) / max(n - 1, 1)
    off_diagonal = cov - torch.diag(torch.diagonal(cov))
    return off_diagonal.pow(2).sum() / d


def epps_pulley(projections: Tensor, num_points: int = 17, t_max: float = 3.0) -> Tensor:
    """Epps-Pulley statistic of each column of `projections` [N, M] against N(0, 1), shape [M].

    N * integral of |phi_empirical(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt over [-t_max, t_max]; the integrand
    is even in t, so we integrate over [0, t_max] with the trapezoid rule and double it.
    """
    n = projections.shape[0]
    t = torch.linspace(0.0, t_max, num_points, device=projections.device, dtype=torch.float32)
    xt = projections.float().unsqueeze(-1) * t  # [N, M, P]
    real = torch.cos(xt).mean(dim=0)  # [M, P]
    imag = torch.sin(xt).mean(dim=0)
    gauss = torch.exp(-0.5 * t**2)
    integrand = ((real - gauss) ** 2 + imag**2) * gauss
    return 2.0 * n * torch.trapezoid(integrand, t, dim=-1)


def sigreg(z: Tensor, num_directions: int = 1024, generator: torch.Generator | None = None) -> Tensor:
    """SIGReg (LeJEPA): mean Epps-Pulley statistic of z [N, D] projected on random unit directions."""
    directions = torch.randn(z.shape[1], num_directions, generator=generator, device=z.device)
    directions = directions / directions.norm(dim=0, keepdim=True)
    return epps_pulley(z.float() @ directions).mean()


@dataclass
class RegularizerConfig:
    """`kind`: none | vicreg | sigreg. VICReg weights follow EB-JEPA/PLDM style; SIGReg lambda ~0.02-0.1."""

    kind: str = "none"
    weight: float = 0.05
    variance_weight: float = 1.0
    covariance_weight: float = 0.04
    num_directions: int = 1024

    def __post_init__(self) -> None:
        if self.kind not in ("none", "vicreg", "sigreg"):
            from worldjepa.errors import UserError

            raise UserError(f"regularizer.kind must be none, vicreg or sigreg, got '{self.kind}'")


def collapse_regularizer(z: Tensor, cfg: RegularizerConfig) -> tuple[Tensor, dict[str, float]]:
    """The configured regularizer on embeddings z [N, D] (weighted), and its parts for logging."""
    if cfg.kind == "vicreg":
        var, cov = vicreg_variance(z), vicreg_covariance(z)
        loss = cfg.weight * (cfg.variance_weight * var + cfg.covariance_weight * cov)
        return loss, {"reg_variance": var.detach(), "reg_covariance": cov.detach()}
    if cfg.kind == "sigreg":
        stat = sigreg(z, cfg.num_directions)
        return cfg.weight * stat, {"reg_sigreg": stat.detach()}
    return z.new_zeros(()), {}


__all__ = [
    "RegularizerConfig",
    "collapse_regularizer",
    "epps_pulley",
    "sigreg",
    "vicreg_covariance",
    "vicreg_variance",
]
