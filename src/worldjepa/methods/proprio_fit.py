"""Fitting the learned proprio head: s_{t+k} = f(s_t, the k actions between), on every recorded transition.

The planner rolls future states forward with this head, so where it is wrong the plan is wrong: in
Two Rooms a head that lets the agent walk through the wall sends the planner into it. The head does
not touch the predictor (the predictor's state tokens carry the recorded states in post-training), so
it is fitted on its own, after the predictor, on all transitions rather than on the predictor's clips:

- inputs and outputs are normalised by the data's statistics (stored in the head's config);
- the loss is the mean squared error of the normalised state change. An L1 loss fits the typical
  (free) motion and lets rare but exact events such as a wall stopping the agent average away. Two
  Rooms, from 4.5 px before the wall, four model steps of 5 pushes of 3 px into it (truth: 29.5 px
  each time): L1, 4,000 steps: 31, 37, 47, 61 px; squared error, 4,000 steps: 29.5, 30.0, 31.7, 38.5;
  16,000 steps (the preset): 29.4, 29.6, 29.9, 30.8;
- a held-out share of the transitions reports how far off the fitted head is, in state units;
- a head of several moves (`per_move`: frame skip k, one env action learned and applied k times) is
  fitted on single-action transitions (frame skip 1 of the same episodes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import safe_open
from torch import Tensor
from tqdm.auto import tqdm

from worldjepa.errors import UserError
from worldjepa.nn.proprio_head import ProprioHead
from worldjepa.train.device import resolve_device


@dataclass
class ProprioFitConfig:
    """hidden_dim / hidden_layers size the head's MLP; validation is the number of held-out transitions;
    frame_context: the head also reads the frame latent (`ProprioHead`'s context: a gripper that meets
    a block stops at its width); per_move: the head learns one env action and applies it frame-skip
    times per model step (`ProprioHead`'s moves; its held-out errors are then those of one action)."""

    steps: int = 4000
    batch_size: int = 512
    lr: float = 1.0e-3
    hidden_dim: int = 256
    hidden_layers: int = 3
    validation: int = 2000
    seed: int = 0
    frame_context: bool = False
    per_move: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.validation < 0 or not self.lr > 0:
            raise UserError(
                "proprio_fit needs steps >= 1, batch_size >= 1, validation >= 0 and lr > 0, got "
                f"{self.steps}, {self.batch_size}, {self.validation} and {self.lr}"
            )


class Transitions(NamedTuple):
    """states [M, S], actions [M, k*A], next states [M, S]; frames [M, N*D]: the latent of each s_t's
    frame (flattened, as stored in the cache) when asked for, else None."""

    states: Tensor
    actions: Tensor
    next_states: Tensor
    frames: Tensor | None = None


def episode_transitions(states: Tensor, actions: Tensor, frame_skip: int) -> tuple[Tensor, Tensor, Tensor]:
    """One episode's (s_t, a_t..a_{t+k-1} concatenated time-major, s_{t+k}) for every t, k = frame_skip;
    states [T+1, S], actions [T, A] (T >= k)."""
    window = len(actions) - frame_skip + 1
    return states[:window], actions.unfold(0, frame_skip, 1).transpose(1, 2).flatten(1), states[frame_skip:]


def cached_transitions(cache_dir: str | Path, frame_skip: int, frames: bool = False) -> Transitions:
    """Every (s_t, a_t..a_{t+k-1} concatenated, s_{t+k}) of an embedding cache's episodes, k = frame_skip,
    with the latent of s_t's frame if `frames`."""
    episodes, latents = [], []
    for path in sorted(Path(cache_dir).glob("episode_*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            s, a = f.get_tensor("states").float(), f.get_tensor("actions").float()
            if len(a) < frame_skip:
                continue
            if frames:
                latents.append(f.get_slice("z")[: len(a) - frame_skip + 1].flatten(1))
        episodes.append(episode_transitions(s, a, frame_skip))
    if not episodes:
        raise UserError(f"no episode in {cache_dir} is longer than frame_skip {frame_skip}")
    return Transitions(
        *(torch.cat(part) for part in zip(*episodes, strict=True)), torch.cat(latents) if frames else None
    )


def normalization_of(states: Tensor, actions: Tensor, next_states: Tensor) -> dict[str, list[float]]:
    """Means and standard deviations (floored, so a constant dimension stays finite) for `ProprioHead`."""

    def std(x: Tensor) -> list[float]:
        return x.std(0).clamp_min(1e-6).tolist()

    return {
        "state_mean": states.mean(0).tolist(),
        "state_std": std(states),
        "action_mean": actions.mean(0).tolist(),
        "action_std": std(actions),
        "delta_std": std(next_states - states),
    }


def fit_proprio_head(
    head: ProprioHead,
    states: Tensor,
    actions: Tensor,
    next_states: Tensor,
    cfg: ProprioFitConfig,
    device: str = "auto",
    progress_bar: bool = True,
    frames: Tensor | None = None,
) -> dict[str, float]:
    """Fit `head` in place (AdamW, one-cycle lr, mean squared error of the normalised state change) on
    transitions of one of its moves (a head of `moves` > 1 learns single env actions: frame skip 1);
    returns the held-out mean and 99th-percentile absolute error per state value, in state units.
    `frames` [M, N*D]: the frame latents of a head that reads them (kept in their stored precision and
    moved per batch)."""
    if states.shape[1] != head.state_dim or actions.shape[1] != head.move_dim:
        raise UserError(
            f"the proprio head takes {head.state_dim}-D states and {head.move_dim} action values per "
            f"transition ({head.moves} moves per model step), the data has {states.shape[1]} and {actions.shape[1]}; "
            "check world_model.frame_skip"
        )
    if head.context_dim and (frames is None or frames.shape != (len(states), head.context_dim)):
        raise UserError(
            f"this proprio head reads frame latents of {head.context_dim} values: pass them per transition"
        )
    generator = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(states), generator=generator)
    held_out = min(cfg.validation, len(states) // 5)
    val, train = order[:held_out], order[held_out:]
    head.set_normalization(normalization_of(states[train], actions[train], next_states[train]))
    device = resolve_device(device)
    head.to(device).train()
    states, actions, next_states = states.to(device), actions.to(device), next_states.to(device)
    optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.steps)
    bar = tqdm(range(cfg.steps), desc="proprio head", disable=not progress_bar, dynamic_ncols=True)

    def context(rows: Tensor) -> Tensor | None:
        return frames[rows.cpu()].to(device, torch.float32) if head.context_dim else None

    for _ in bar:
        batch = train[torch.randint(len(train), (cfg.batch_size,), generator=generator)].to(device)
        error = (
            head.move(states[batch], actions[batch], context(batch)) - next_states[batch]
        ) / head.delta_std
        loss = error.pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    head.eval().requires_grad_(False)
    if not torch.isfinite(loss):
        raise UserError(
            f"the proprio head diverged (loss {loss.item()}); lower world_model.proprio_fit.lr (now {cfg.lr})"
        )
    if held_out == 0:
        return {}
    with torch.no_grad():
        error = (head.move(states[val], actions[val], context(val)) - next_states[val]).abs()
    return {"val_mean_abs_error": error.mean().item(), "val_p99_abs_error": error.quantile(0.99).item()}
