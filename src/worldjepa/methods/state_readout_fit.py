"""Fitting the state readout: the state a frame shows, from its pixels, on every recorded frame.

The readout gives the planner a goal state from a goal image (`worldjepa.nn.state_readout`). It is fitted
after stage 2 on the trajectory folder the world model was trained on, with targets normalised by the
training frames' statistics and a mean squared error, with channels-last images, under bf16 autocast where
the hardware computes bf16 natively (`worldjepa.train.device.native_bf16`). Whole episodes are held out,
not single frames (the frames of one episode look alike), and their error is reported per state value, in
state units: how far off a goal state read from a goal image is.

State values that are angles of an unlimited joint (`periodic`, e.g. DMC reacher's shoulder, whose full
turn is the same picture) are read by a pair readout as the change the shortest way round, wrapped into
[-pi, pi): the goal angle is then the current one plus that change, the nearest turn of the pose shown.

With `scene_augment` > 0 that share of every batch is drawn in a random scene look
(`worldjepa.data.scene_augment`), so that goal images from scenes the data never showed (other colours,
lights, a textured table, distractors) are still read; the held-out error is measured on plain frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from worldjepa.data.scene_augment import scene_augment
from worldjepa.data.trajectories import TrajectoryDataset
from worldjepa.errors import UserError
from worldjepa.nn.state_readout import Standardize, StateReadout
from worldjepa.train.device import autocast, resolve_device

#: How far apart (frames) the near pairs of `StateReadoutFitConfig.near_pairs` are at most.
NEAR_FRAMES = 6


@dataclass
class StateReadoutFitConfig:
    """The `world_model.state_readout` section: a network `width` channels wide, trained with AdamW and a
    one-cycle lr over `steps` batches; `validation` is the share of episodes held out to measure it;
    `scene_augment` the share of each batch given a random scene look, `reshade` the share of those looks
    whose tone curve is not monotonic (a light from another side swaps which faces look bright); `pair`
    reads the state change from the current image to the goal image instead of the goal image's state
    (`StateReadout`);
    `near_pairs` the share of a pair readout's pairs drawn at most `NEAR_FRAMES` frames apart (the small
    changes it must read precisely near a goal); `periodic` the state values that are angles of an
    unlimited joint (pair readouts only); `weights` how much each state value counts in the loss (None: all
    alike; 0 for a value the pictures cannot show, such as a velocity, whose noise would crowd out the rest);
    `antisymmetric` makes a pair readout read each change both ways and `standardize` rescales its input
    pictures to zero mean and unit spread, per colour channel or by one brightness gain (`StateReadout`)."""

    steps: int = 4000
    batch_size: int = 128
    lr: float = 2.0e-3
    width: int = 16
    validation: float = 0.1
    scene_augment: float = 0.0
    reshade: float = 0.0
    pair: bool = False
    near_pairs: float = 0.0
    periodic: list[int] = field(default_factory=list)
    weights: list[float] | None = None
    antisymmetric: bool = False
    standardize: Standardize = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        if (
            min(self.steps, self.batch_size, self.width) < 1
            or not 0.0 <= self.validation < 1.0
            or not 0.0 <= self.scene_augment <= 1.0
            or not 0.0 <= self.reshade <= 1.0
            or not 0.0 <= self.near_pairs <= 1.0
            or not self.lr > 0
        ):
            raise UserError(
                "state_readout needs steps, batch_size and width >= 1, validation in [0, 1), scene_augment, "
                f"reshade and near_pairs in [0, 1] and lr > 0, got {self.steps}, {self.batch_size}, "
                f"{self.width}, {self.validation}, {self.scene_augment}, {self.reshade}, {self.near_pairs} "
                f"and {self.lr}"
            )
        if self.antisymmetric and not self.pair:
            raise UserError(
                "state_readout.antisymmetric=true needs state_readout.pair=true: it reads a change both ways"
            )
        if self.periodic and not self.pair:
            raise UserError(
                f"state_readout.periodic={self.periodic} needs state_readout.pair=true: one picture of an unlimited "
                "joint does not show how many turns it has made, a pair shows the change the shortest way round"
            )

    def build(self, state_dim: int, image_size: int) -> StateReadout:
        """An unfitted readout of this section's shape (width, pair, antisymmetric, standardize) for
        `state_dim`-D states read from `image_size` px frames."""
        return StateReadout(
            state_dim,
            image_size,
            self.width,
            pair=self.pair,
            antisymmetric=self.antisymmetric,
            standardize=self.standardize,
        )


def recorded_frames(trajectories: str | Path) -> tuple[Tensor, Tensor, Tensor]:
    """Every frame of a trajectory folder: uint8 frames [M, H, W, 3], states [M, S], episode numbers [M]."""
    data = TrajectoryDataset(trajectories, clip_length=1)
    frames, states, episodes = [], [], []
    for index in range(data.num_episodes):
        episode = data.episode(index)
        frames.append(torch.from_numpy(episode["frames"]))
        states.append(torch.from_numpy(episode["states"]).float())
        episodes.append(torch.full((len(states[-1]),), index))
    if not frames:
        raise UserError(f"{trajectories} holds no episode")
    return torch.cat(frames), torch.cat(states), torch.cat(episodes)


def episode_spans(episodes: Tensor) -> tuple[Tensor, Tensor]:
    """Episode numbers [M] -> the first frame and the length of each frame's episode ([M] each). The frames
    of an episode must be contiguous, as `recorded_frames` returns them."""
    starts = torch.ones_like(episodes, dtype=torch.bool)
    starts[1:] = episodes[1:] != episodes[:-1]
    if int(starts.sum()) != len(episodes.unique()):
        raise UserError("a pair state readout needs the frames of each episode next to each other")
    run = starts.cumsum(0) - 1
    return starts.nonzero().squeeze(1)[run], torch.bincount(run)[run]


def same_episode_partners(
    indices: Tensor, spans: tuple[Tensor, Tensor], generator: torch.Generator, within: int | None = None
) -> Tensor:
    """For each frame index, a random frame of its own episode (`spans` from `episode_spans`); with
    `within`, one at most that many frames away."""
    first, length = spans[0][indices], spans[1][indices]
    if within is None:
        return first + (torch.rand(len(indices), generator=generator) * length).long()
    offset = torch.randint(-within, within + 1, (len(indices),), generator=generator)
    return torch.minimum(torch.maximum(indices + offset, first), first + length - 1)


def held_out_split(episodes: Tensor, share: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Episode numbers [M] -> (training, held-out) frame indices: a random `share` of whole episodes held
    out (the frames of one episode look alike, so single held-out frames would flatter the error)."""
    names = episodes.unique()
    held = names[torch.randperm(len(names), generator=generator)[: int(share * len(names))]]
    is_held = torch.isin(episodes, held)
    return (~is_held).nonzero().squeeze(1), is_held.nonzero().squeeze(1)


def wrap_angle(angles: Tensor) -> Tensor:
    """Angles (rad) -> the same angles in [-pi, pi): a change of an unlimited joint the shortest way round."""
    return torch.remainder(angles + math.pi, 2 * math.pi) - math.pi


def fit_state_readout(
    readout: StateReadout,
    frames: Tensor,
    states: Tensor,
    episodes: Tensor,
    to_input: Callable[[Tensor], Tensor],
    cfg: StateReadoutFitConfig,
    device: str = "auto",
    progress_bar: bool = True,
) -> dict[str, list[float]]:
    """Fit `readout` in place on uint8 `frames` [M, H, W, 3] (turned into its input by `to_input`, which
    takes uint8 [B, H, W, 3] or float [B, 3, H, W] in [0, 1] as `FrameEncoder.pixels_to_input`), their
    `states` [M, S] and `episodes` [M] (episode numbers); returns the held-out episodes' mean and
    90th-percentile absolute error of each state value, in state units (empty when nothing is held out).
    A pair readout is fitted on (frame, another frame of its episode) pairs, each pair in one scene look,
    and its error is that of the state change between them."""
    if states.shape[1] != readout.state_dim:
        raise UserError(
            f"the state readout predicts {readout.state_dim}-D states, the data has {states.shape[1]}"
        )
    if any(not 0 <= i < readout.state_dim for i in cfg.periodic):
        raise UserError(
            f"state_readout.periodic={cfg.periodic} names values outside the {readout.state_dim}-D state"
        )
    if cfg.weights is not None and (len(cfg.weights) != readout.state_dim or min(cfg.weights) < 0):
        raise UserError(
            f"state_readout.weights needs {readout.state_dim} values >= 0 (one per state value), got {cfg.weights}"
        )
    generator = torch.Generator().manual_seed(cfg.seed)
    train, val = held_out_split(episodes, cfg.validation, generator)
    device = resolve_device(device)
    weights = torch.tensor(
        cfg.weights if cfg.weights is not None else [1.0] * readout.state_dim, device=device
    )
    spans = episode_spans(episodes) if readout.pair else None  # once: the same for every batch

    def pairs(indices: Tensor) -> tuple[Tensor, Tensor | None]:
        """(frames read, their reference frames or None) for a batch of frame indices."""
        if not readout.pair:
            return indices, None
        partners = same_episode_partners(indices, spans, generator)
        if cfg.near_pairs > 0:
            near = same_episode_partners(indices, spans, generator, within=NEAR_FRAMES)
            partners = torch.where(
                torch.rand(len(indices), generator=generator) < cfg.near_pairs, near, partners
            )
        return partners, indices

    def targets(read: Tensor, reference: Tensor | None) -> Tensor:
        if reference is None:
            return states[read]
        change = states[read] - states[reference]
        change[:, cfg.periodic] = wrap_angle(change[:, cfg.periodic])
        return change

    def inputs(read: Tensor, reference: Tensor | None, looks: float) -> tuple[Tensor, Tensor | None]:
        """Model inputs of the frames (and references), a share `looks` of them (pairs together) in a
        random scene look."""
        shown = read if reference is None else torch.stack([reference, read], dim=1).flatten()
        images = frames[shown].to(device).permute(0, 3, 1, 2).float().div_(255.0)
        group = 1 if reference is None else 2
        if looks > 0:
            picked = (torch.rand(len(read), generator=generator) < looks).repeat_interleave(group)
            images[picked] = scene_augment(images[picked], generator, group=group, reshade=cfg.reshade)
        images = to_input(images).contiguous(memory_format=torch.channels_last)
        if reference is None:
            return images, None
        return images[1::2], images[0::2]

    if readout.pair:  # the statistics of the state changes it reads
        sample = targets(*pairs(train[torch.randint(len(train), (4096,), generator=generator)]))
    else:
        sample = states[train]
    readout.set_normalization(
        {"state_mean": sample.mean(0).tolist(), "state_std": sample.std(0).clamp_min(1e-6).tolist()}
    )
    readout.to(device, memory_format=torch.channels_last).train()
    states = states.to(device)
    optimizer = torch.optim.AdamW(readout.parameters(), lr=cfg.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.steps)
    bar = tqdm(range(cfg.steps), desc="state readout", disable=not progress_bar, dynamic_ncols=True)
    for _ in bar:
        read, reference = pairs(train[torch.randint(len(train), (cfg.batch_size,), generator=generator)])
        with autocast(device, "bf16"):
            predicted = readout(*inputs(read, reference, cfg.scene_augment)).float()
        loss = (((predicted - targets(read, reference)) / readout.state_std).pow(2) * weights).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    readout.eval().requires_grad_(False)
    if len(val) == 0:
        return {}
    with torch.no_grad():
        error = torch.cat(
            [(readout(*inputs(*pair, 0.0)) - targets(*pair)).abs() for pair in map(pairs, val.split(512))]
        )
    return {
        "val_mean_abs_error": error.mean(0).tolist(),
        "val_p90_abs_error": error.quantile(0.9, dim=0).tolist(),
    }
