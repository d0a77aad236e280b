"""The contract between a training method (I-JEPA, V-JEPA, action-conditioned post-training) and the Trainer.

A method is an `nn.Module` whose `forward(batch)` computes one training step's loss and returns a
`StepOutput`, and whose `after_optimizer_step(progress)` does what follows each update (the EMA
target encoder). Its frozen parts (`requires_grad=False`) are saved in checkpoints but never optimised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


@dataclass
class StepOutput:
    """What one forward pass of a method returns.

    loss: scalar to minimise. metrics: extra values to log (read only at logging steps, so tensors are
    fine and cost no sync). embeddings: [N, D] features for the collapse monitor, or None.
    """

    loss: torch.Tensor
    metrics: dict[str, float | torch.Tensor] = field(default_factory=dict)
    embeddings: torch.Tensor | None = None


class Method(Protocol):
    """What the Trainer requires of a method (an `nn.Module` with these two methods)."""

    def __call__(self, batch: Any) -> StepOutput: ...

    def after_optimizer_step(self, progress: float) -> None:
        """Called after every optimizer step; `progress` = finished step index / total steps, in [0, 1)."""
