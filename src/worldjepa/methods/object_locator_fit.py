"""Fitting the object locator (`worldjepa.nn.object_locator`) on recorded frames, proprio and object values.

Two phases, because the two parts learn at very different costs. First the whole locator, end to end, for
`steps` batches of frames: the per-pixel masks learn which pixels are the object (each step runs every
pixel of the batch). Then the masks are frozen, every training frame's keypoints computed once, and the
MLP alone trained `head_steps` more batches on them and the proprio (a step costs microseconds): the
precision is in that map from keypoints to the object's place. On 400 Push episodes (36k frames, 64 px)
the block is read 2.7 mm off per axis on held-out episodes after the first phase, 1.8 mm after the second
(docs/results.md). Whole episodes are held out (`held_out_split`); the error is reported per object value,
in data units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from worldjepa.errors import UserError
from worldjepa.methods.state_readout_fit import held_out_split
from worldjepa.nn.object_locator import ObjectLocator
from worldjepa.train.device import autocast, resolve_device

#: Frames per forward pass when computing keypoints of many frames at once.
CHUNK = 4096


@dataclass
class ObjectLocatorFitConfig:
    """`steps` batches of `batch_size` frames end to end at peak lr `lr`, then `head_steps` batches of
    `head_batch_size` cached keypoints for the MLP alone at peak lr `head_lr` (AdamW, one-cycle lr each);
    `validation` is the share of episodes held out to measure it; the rest shapes the `ObjectLocator`."""

    steps: int = 1500
    batch_size: int = 128
    lr: float = 2.0e-3
    head_steps: int = 8000
    head_batch_size: int = 512
    head_lr: float = 1.0e-3
    keypoints: int = 4
    width: int = 16
    hidden_dim: int = 256
    validation: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        sizes = (
            self.steps,
            self.batch_size,
            self.head_steps,
            self.head_batch_size,
            self.keypoints,
            self.width,
        )
        if (
            min(*sizes, self.hidden_dim) < 1
            or not 0.0 <= self.validation < 1.0
            or min(self.lr, self.head_lr) <= 0
        ):
            raise UserError(
                "object_locator needs steps, batch_size, head_steps, head_batch_size, keypoints, width and "
                f"hidden_dim >= 1, validation in [0, 1) and lr, head_lr > 0, got {self}"
            )

    def build(self, out_dim: int, proprio_dim: int) -> ObjectLocator:
        """An unfitted locator of this section's shape for `out_dim` object values and `proprio_dim`-D proprio."""
        return ObjectLocator(out_dim, proprio_dim, self.keypoints, self.width, self.hidden_dim)


def fit_object_locator(
    locator: ObjectLocator,
    frames: Tensor,
    proprio: Tensor,
    values: Tensor,
    episodes: Tensor,
    to_input: Callable[[Tensor], Tensor],
    cfg: ObjectLocatorFitConfig,
    device: str = "auto",
    progress_bar: bool = True,
) -> dict[str, list[float]]:
    """Fit `locator` in place on uint8 `frames` [M, H, W, 3] (turned into its input by `to_input`, which
    takes float [B, 3, H, W] in [0, 1]), the robot's `proprio` [M, P] and the object's `values` [M, V] in
    them, `episodes` [M] (episode numbers); returns the held-out episodes' mean and 90th-percentile
    absolute error of each object value, in data units (empty when nothing is held out)."""
    if values.shape[1] != locator.out_dim or proprio.shape[1] != locator.proprio_dim:
        raise UserError(
            f"the object locator reads {locator.out_dim} values with {locator.proprio_dim}-D proprio, the data "
            f"has {values.shape[1]} and {proprio.shape[1]}"
        )
    if not len(frames) == len(proprio) == len(values) == len(episodes):
        raise UserError(
            f"object locator data of unequal lengths: {len(frames)} frames, {len(proprio)} proprio states, "
            f"{len(values)} object values, {len(episodes)} episode numbers"
        )
    for name, data in (("proprio", proprio), ("object values", values)):
        if not torch.isfinite(data).all():
            raise UserError(f"the object locator's {name} hold NaN or inf: drop those frames before fitting")
    generator = torch.Generator().manual_seed(cfg.seed)
    train, val = held_out_split(episodes, cfg.validation, generator)
    device = resolve_device(device)
    values, proprio = values.float(), proprio.float()
    out_mean, out_std = values[train].mean(0), values[train].std(0).clamp_min(1e-6)
    locator.set_normalization(
        {
            "out_mean": out_mean.tolist(),
            "out_std": out_std.tolist(),
            "proprio_mean": proprio[train].mean(0).tolist(),
            "proprio_std": proprio[train].std(0).clamp_min(1e-6).tolist(),
        }
    )
    locator.to(device, memory_format=torch.channels_last).train()
    targets = ((values - out_mean) / out_std).to(device)
    proprio = proprio.to(device)

    def images(indices: Tensor) -> Tensor:
        pixels = frames[indices].to(device).permute(0, 3, 1, 2).float().div_(255.0)
        return to_input(pixels).contiguous(memory_format=torch.channels_last)

    def keypoints(indices: Tensor) -> Tensor:
        with torch.no_grad(), autocast(device, "bf16"):
            return torch.cat([locator.keypoints_of(images(chunk)) for chunk in indices.split(CHUNK)])

    def normalised_read(keypoints: Tensor, rows: Tensor) -> Tensor:
        return (locator.read(keypoints, proprio[rows]) - locator.out_mean) / locator.out_std

    def train_phase(parameters, steps: int, lr: float, batch: int, name: str, loss_of) -> None:
        optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
        bar = tqdm(range(steps), desc=name, disable=not progress_bar, dynamic_ncols=True)
        for _ in bar:
            rows = torch.randint(len(train), (batch,), generator=generator)
            loss = loss_of(rows)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)

    def end_to_end_loss(rows: Tensor) -> Tensor:
        frames_at = train[rows]
        with autocast(device, "bf16"):
            found = locator.keypoints_of(images(frames_at))
        return (normalised_read(found.float(), frames_at) - targets[frames_at]).pow(2).mean()

    train_phase(locator.parameters(), cfg.steps, cfg.lr, cfg.batch_size, "object locator", end_to_end_loss)
    cached = keypoints(train)  # the masks are fixed from here on

    def head_loss(rows: Tensor) -> Tensor:
        return (normalised_read(cached[rows], train[rows]) - targets[train[rows]]).pow(2).mean()

    head = locator.head.parameters()
    train_phase(head, cfg.head_steps, cfg.head_lr, cfg.head_batch_size, "object locator head", head_loss)
    locator.eval().requires_grad_(False)
    if len(val) == 0:
        return {}
    with torch.no_grad():
        error = (locator.read(keypoints(val), proprio[val]) - values[val].to(device)).abs().cpu()
    return {
        "val_mean_abs_error": error.mean(0).tolist(),
        "val_p90_abs_error": error.quantile(0.9, dim=0).tolist(),
    }
