"""Fitting the state readout: the state a frame shows, from its frozen latent, on every recorded frame.

The readout gives the planner a goal state from a goal image (`worldjepa.nn.state_readout`). It is
fitted after stage 2 on the embedding cache (the same latents the planner computes), with targets
normalised by the training frames' statistics and a mean squared error. Whole episodes are held out,
not single frames (the frames of one episode look alike), and their error is reported per state value,
in state units: how far off a goal state estimated from a goal image is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor
from tqdm.auto import tqdm

from worldjepa.errors import UserError
from worldjepa.nn.state_readout import StateReadout
from worldjepa.train.device import resolve_device


@dataclass
class StateReadoutFitConfig:
    """The `world_model.state_readout` section: AdamW with a one-cycle lr over `steps` batches;
    `validation` is the share of episodes held out to measure the readout's error."""

    steps: int = 4000
    batch_size: int = 256
    lr: float = 1.0e-3
    num_heads: int = 4
    validation: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or not 0.0 <= self.validation < 1.0:
            raise UserError(
                "state_readout needs steps >= 1, batch_size >= 1 and validation in [0, 1), got "
                f"{self.steps}, {self.batch_size} and {self.validation}"
            )


def cached_frames(cache_dir: str | Path) -> tuple[Tensor, Tensor, Tensor]:
    """Every frame of an embedding cache: latents [M, N, D], states [M, S] and episode numbers [M]."""
    latents, states, episodes = [], [], []
    for index, path in enumerate(sorted(Path(cache_dir).glob("episode_*.safetensors"))):
        with safe_open(str(path), framework="pt") as f:
            latents.append(f.get_tensor("z").float())
            states.append(f.get_tensor("states").float())
        episodes.append(torch.full((len(states[-1]),), index))
    if not latents:
        raise UserError(f"the embedding cache {cache_dir} holds no episode")
    return torch.cat(latents), torch.cat(states), torch.cat(episodes)


def fit_state_readout(
    readout: StateReadout,
    latents: Tensor,
    states: Tensor,
    episodes: Tensor,
    cfg: StateReadoutFitConfig,
    device: str = "auto",
    progress_bar: bool = True,
) -> dict[str, list[float]]:
    """Fit `readout` in place; returns the held-out episodes' mean and 90th-percentile absolute error of
    each state value, in state units (empty when nothing is held out)."""
    if states.shape[1] != readout.state_dim or latents.shape[-1] != readout.embed_dim:
        raise UserError(
            f"the state readout takes {readout.embed_dim}-wide latents and {readout.state_dim}-D states, the "
            f"data has {latents.shape[-1]} and {states.shape[1]}"
        )
    generator = torch.Generator().manual_seed(cfg.seed)
    names = episodes.unique()
    held = names[torch.randperm(len(names), generator=generator)[: int(cfg.validation * len(names))]]
    is_val = torch.isin(episodes, held)
    train, val = (~is_val).nonzero().squeeze(1), is_val.nonzero().squeeze(1)
    std = states[train].std(0).clamp_min(1e-6)
    readout.set_normalization({"state_mean": states[train].mean(0).tolist(), "state_std": std.tolist()})
    device = resolve_device(device)
    readout.to(device).train()
    latents, states = latents.to(device), states.to(device)
    optimizer = torch.optim.AdamW(readout.parameters(), lr=cfg.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.steps)
    bar = tqdm(range(cfg.steps), desc="state readout", disable=not progress_bar, dynamic_ncols=True)
    for _ in bar:
        batch = train[torch.randint(len(train), (cfg.batch_size,), generator=generator)].to(device)
        loss = ((readout(latents[batch]) - states[batch]) / readout.state_std).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    readout.eval().requires_grad_(False)
    if len(val) == 0:
        return {}
    with torch.no_grad():
        error = torch.cat([(readout(latents[i]) - states[i]).abs() for i in val.to(device).split(1024)])
    return {
        "val_mean_abs_error": error.mean(0).tolist(),
        "val_p90_abs_error": error.quantile(0.9, dim=0).tolist(),
    }
