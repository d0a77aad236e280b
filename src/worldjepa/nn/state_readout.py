"""The state a frame shows, read from its latent: how a planner gets a goal state from a goal IMAGE.

Under the planning protocol the planner never sees the simulator's goal state. An energy that compares
states (the DINO-WM-style proprio term) therefore needs the goal state estimated from the goal image:
`StateReadout` is V-JEPA's attentive probe (one learned query cross-attending to the frame's latent
tokens) with a linear head, fitted after stage 2 on every recorded frame and its state
(`worldjepa.methods.state_readout_fit`), on targets normalised by the data's statistics (constants of
the architecture, kept in its config like the proprio head's).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from worldjepa.errors import UserError
from worldjepa.nn.probes import AttentiveProbe


class StateReadout(AttentiveProbe):
    """Frame latents [B, N, D] -> the state they show [B, S], in the data's units."""

    def __init__(
        self,
        embed_dim: int,
        state_dim: int,
        num_heads: int = 4,
        normalization: dict[str, list[float]] | None = None,
    ) -> None:
        super().__init__(embed_dim, num_heads, state_dim)
        self.embed_dim, self.state_dim = embed_dim, state_dim
        self.set_normalization(normalization)

    def set_normalization(self, normalization: dict[str, list[float]] | None) -> None:
        """`state_mean` and `state_std` (S values each); None: the identity."""
        given = normalization or {"state_mean": [0.0] * self.state_dim, "state_std": [1.0] * self.state_dim}
        if set(given) != {"state_mean", "state_std"} or any(len(v) != self.state_dim for v in given.values()):
            raise UserError(
                f"state readout normalization needs state_mean and state_std of {self.state_dim} values"
            )
        self.normalized = normalization is not None
        for key, values in given.items():  # non-persistent: constants of the config, moved with .to()
            self.register_buffer(key, torch.tensor(values, dtype=torch.float32), persistent=False)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens [B, N, D] -> states [B, S]."""
        return super().forward(tokens) * self.state_std + self.state_mean

    def config(self) -> dict[str, Any]:
        config = {"embed_dim": self.embed_dim, "state_dim": self.state_dim, "num_heads": self.num_heads}
        if self.normalized:
            config["normalization"] = {
                key: getattr(self, key).tolist() for key in ("state_mean", "state_std")
            }
        return config
