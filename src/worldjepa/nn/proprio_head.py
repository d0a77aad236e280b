"""Proprioceptive dynamics: the state after an action, s_{t+1} = f(s_t, a_t).

The AC predictor takes a state token at every step, but while planning the future states are
unknown. V-JEPA 2-AC computes them analytically from its end-effector-delta actions, which only works
for that action space. `ProprioHead` learns f with a small residual MLP on normalised inputs (fitted
on every recorded transition by `worldjepa.methods.proprio_fit`), so every env works;
`AdditiveProprio` is the analytic path for envs whose action is the change of state
(s_{t+1} = s_t + a_t; V-JEPA 2-AC's rule up to its rotation composition).

Both take actions of k*A values (k raw actions per step after frame skipping, as trajectories store).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from worldjepa.errors import UserError
from worldjepa.nn.normalization import normalization_config, set_normalization_buffers

NORMALIZATION_KEYS = ("state_mean", "state_std", "action_mean", "action_std", "delta_std")


class ProprioHead(nn.Module):
    """s + delta_std * MLP([(s - state_mean) / state_std, (a - action_mean) / action_std]).

    The normalisation (`normalization`: dataset statistics set by `fit_proprio_head`) puts states in
    world units (pixels, metres, radians) and actions of any scale on one footing, so the MLP can learn
    sharp rules such as "a wall stops the agent"; None means the identity. The statistics are constants
    of the architecture (kept in its config, not in the weights). The last layer starts at zero, so an
    untrained head predicts "no change".

    `context_dim` > 0 also feeds the head the frame latent planned from (flattened, `context`): the
    state alone cannot tell whether closing fingers will meet a block (and stop at its width) or close
    on air; the picture can. The same frame serves every step of a rollout.

    `moves` > 1: a step's actions are that many env actions (frame skip) and the MLP learns one of them,
    applied once per action (`move`). Where a wall stops one move is a simpler rule than where it
    stops five: Two Rooms, same 300 episodes, five-move head vs one move applied five times: 0.18 vs
    0.07 px off on a free step, 0.60 vs 0.29 against a wall, 1.66 vs 1.01 through the door.
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        hidden_dim: int = 128,
        hidden_layers: int = 2,
        normalization: dict[str, list[float]] | None = None,
        context_dim: int = 0,
        moves: int = 1,
    ) -> None:
        super().__init__()
        if hidden_layers < 1:
            raise UserError(f"the proprio head needs at least one hidden layer, got {hidden_layers}")
        if moves < 1 or action_dim % moves:
            raise UserError(
                f"the proprio head's {action_dim} action values do not split into {moves} moves; "
                "moves must divide them (it is the frame skip)"
            )
        self.state_dim, self.action_dim, self.context_dim = state_dim, action_dim, context_dim
        self.moves, self.move_dim = moves, action_dim // moves
        self.hidden_dim, self.hidden_layers = hidden_dim, hidden_layers
        layers: list[nn.Module] = [nn.Linear(state_dim + self.move_dim + context_dim, hidden_dim), nn.GELU()]
        for _ in range(hidden_layers - 1):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.GELU()]
        self.mlp = nn.Sequential(*layers, nn.Linear(hidden_dim, state_dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.set_normalization(normalization)

    def set_normalization(self, normalization: dict[str, list[float]] | None) -> None:
        """Keys state_mean, state_std (S), action_mean, action_std (values of one move) and delta_std (S,
        of one move); None: identity."""
        sizes = {
            key: self.move_dim if key.startswith("action") else self.state_dim for key in NORMALIZATION_KEYS
        }
        set_normalization_buffers(self, sizes, normalization, "proprio head")

    def forward(self, states: Tensor, actions: Tensor, context: Tensor | None = None) -> Tensor:
        """states [..., S], actions [..., A] (context [..., context_dim]) -> next states [..., S]."""
        for move in actions.unflatten(-1, (self.moves, self.move_dim)).unbind(-2):
            states = self.move(states, move, context)
        return states

    def move(self, states: Tensor, actions: Tensor, context: Tensor | None = None) -> Tensor:
        """One move: states [..., S], actions [..., A / moves] -> states [..., S]; what the fit trains."""
        inputs = [(states - self.state_mean) / self.state_std, (actions - self.action_mean) / self.action_std]
        if self.context_dim:
            if context is None or context.shape[-1] != self.context_dim:
                got = None if context is None else list(context.shape)
                raise UserError(
                    f"this proprio head reads a frame latent of {self.context_dim} values, got {got}"
                )
            inputs.append(context.to(states.dtype))
        return states + self.delta_std * self.mlp(torch.cat(inputs, dim=-1))

    def config(self) -> dict[str, Any]:
        config = {
            "kind": "learned",
            "state_dim": self.state_dim,
            "action_dim": self.action_dim,
            "hidden_dim": self.hidden_dim,
            "hidden_layers": self.hidden_layers,
        }
        if self.normalized:
            config["normalization"] = normalization_config(self)
        if self.context_dim:
            config["context_dim"] = self.context_dim
        if self.moves > 1:
            config["moves"] = self.moves
        return config


class AdditiveProprio(nn.Module):
    """s + the sum of the k raw actions of a step: exact when the env's action is the state delta."""

    def __init__(self, state_dim: int, action_dim: int) -> None:
        super().__init__()
        if action_dim % state_dim:
            raise UserError(
                f"additive proprio needs actions made of state deltas: action_dim {action_dim} is not a "
                f"multiple of state_dim {state_dim}; use the learned proprio head"
            )
        self.state_dim, self.action_dim, self.context_dim = state_dim, action_dim, 0

    def forward(self, states: Tensor, actions: Tensor, context: Tensor | None = None) -> Tensor:
        """states [..., S], actions [..., k*S] -> next states [..., S] (no context)."""
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


def unroll_states(head: nn.Module, start: Tensor, actions: Tensor, context: Tensor | None = None) -> Tensor:
    """start [B, S], actions [B, H, A] (context [B, C]: the start frame's latent, for a head that reads
    one) -> states [B, H+1, S] of steps 0..H (step 0 is `start`)."""
    states = [start]
    for t in range(actions.shape[1]):
        states.append(head(states[-1], actions[:, t], context))
    return torch.stack(states, dim=1)
