"""Proprioceptive dynamics: the state after an action, s_{t+1} = f(s_t, a_t).

The AC predictor takes a state token at every step, but while planning the future states are
unknown. V-JEPA 2-AC computes them analytically from its end-effector-delta actions, which only works
for that action space. `ProprioHead` learns f with a small residual MLP (trained by its own L1 loss in
the post-training step), so every env works; `AdditiveProprio` is the analytic path for envs whose
action is the change of state (s_{t+1} = s_t + a_t; V-JEPA 2-AC's rule up to its rotation composition).

Both take actions of k*A values (k raw actions per step after frame skipping, as trajectories store).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from worldjepa.errors import UserError


class ProprioHead(nn.Module):
    """s + MLP([s, a]); the last layer starts at zero, so an untrained head predicts "no change"."""

    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int = 128) -> None:
        super().__init__()
        self.state_dim, self.action_dim, self.hidden_dim = state_dim, action_dim, hidden_dim
        self.mlp = nn.Sequential(
            nn.Linear(state_dim + action_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, state_dim),
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, states: Tensor, actions: Tensor) -> Tensor:
        """states [..., S], actions [..., A] -> next states [..., S]."""
        return states + self.mlp(torch.cat([states, actions], dim=-1))

    def config(self) -> dict[str, Any]:
        return {
            "kind": "learned",
            "state_dim": self.state_dim,
            "action_dim": self.action_dim,
            "hidden_dim": self.hidden_dim,
        }


class AdditiveProprio(nn.Module):
    """s + the sum of the k raw actions of a step: exact when the env's action is the state delta."""

    def __init__(self, state_dim: int, action_dim: int) -> None:
        super().__init__()
        if action_dim % state_dim:
            raise UserError(
                f"additive proprio needs actions made of state deltas: action_dim {action_dim} is not a "
                f"multiple of state_dim {state_dim}; use the learned proprio head"
            )
        self.state_dim, self.action_dim = state_dim, action_dim

    def forward(self, states: Tensor, actions: Tensor) -> Tensor:
        """states [..., S], actions [..., k*S] -> next states [..., S]."""
        return states + actions.unflatten(-1, (-1, self.state_dim)).sum(-2)

    def config(self) -> dict[str, Any]:
        return {"kind": "additive", "state_dim": self.state_dim, "action_dim": self.action_dim}


def build_proprio_head(config: dict[str, Any]) -> ProprioHead | AdditiveProprio:
    """Inverse of `head.config()`."""
    kinds = {"learned": ProprioHead, "additive": AdditiveProprio}
    config = dict(config)
    kind = config.pop("kind")
    if kind not in kinds:
        raise UserError(f"proprio head kind must be one of {', '.join(kinds)}, got {kind!r}")
    return kinds[kind](**config)


def unroll_states(head: nn.Module, start: Tensor, actions: Tensor) -> Tensor:
    """start [B, S], actions [B, H, A] -> states [B, H+1, S] of steps 0..H (step 0 is `start`)."""
    states = [start]
    for t in range(actions.shape[1]):
        states.append(head(states[-1], actions[:, t]))
    return torch.stack(states, dim=1)
