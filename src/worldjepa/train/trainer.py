"""The training loop shared by every method: schedules, mixed precision, accumulation, clipping, DDP,
logging, checkpoints and exact resume.

Training is counted in optimizer steps. Everything that varies along a run (lr, weight decay, data
position, EMA progress) is a function of the step, and checkpoints carry the step, the optimizer and
every RNG state, so `resume` continues bit-for-bit where the interrupted run stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, default_collate
from tqdm.auto import tqdm

from worldjepa.errors import UserError
from worldjepa.train import distributed as dist
from worldjepa.train.checkpoint import (
    LATEST,
    keep_copy,
    load_checkpoint,
    load_model_state,
    remove_stale_checkpoints,
    save_checkpoint,
)
from worldjepa.train.device import PRECISIONS, autocast, resolve_device, to_device
from worldjepa.train.logger import METRICS_CSV, RunLogger
from worldjepa.train.method import StepOutput
from worldjepa.train.monitor import collapse_metrics
from worldjepa.train.optim import build_adamw, set_hparams
from worldjepa.train.rng import get_rng_state, seed_everything, set_rng_state
from worldjepa.train.sampler import SeededBatchSampler, SeededDataset
from worldjepa.train.schedules import cosine, warmup_cosine
from worldjepa.viz.curves import plot_curves

# Keys that fix the data stream; resuming with other values could not continue the same run.
_RESUME_KEYS = ("seed", "batch_size", "accum_steps")
# Values AdamW, the schedules or the loader would refuse mid-run (or follow into nonsense) when negative.
_NON_NEGATIVE = (
    "epochs", "total_steps", "lr", "start_lr", "final_lr", "warmup_steps", "weight_decay",
    "final_weight_decay", "eps", "grad_clip", "num_workers", "ckpt_every", "keep_every",
)  # fmt: skip
_DIVERGED_FIX = "lower train.lr, set train.grad_clip (e.g. 1.0) or check the data for NaN / inf values"


@dataclass
class TrainConfig:
    """The `train:` section of a preset. Exactly one of `epochs` / `total_steps` is set (> 0).

    batch_size is per process and per micro-batch: an optimizer step sees
    batch_size * accum_steps * world_size samples. lr warms up linearly from start_lr to lr over
    warmup_steps (or warmup_fraction of the run), then follows a cosine to final_lr; weight decay
    follows a cosine from weight_decay to final_weight_decay. grad_clip 0 disables clipping;
    ckpt_every 0 saves only at the end; keep_every > 0 also keeps `step_XXXXXXXX.pt` copies.
    tensorboard mirrors the CSV log to run_dir/tb when TensorBoard is installed. resume continues from
    run_dir/latest.pt when it exists (and starts fresh when it does not, so a restarted job just works).
    """

    epochs: int = 0
    total_steps: int = 0
    batch_size: int = 64
    accum_steps: int = 1
    lr: float = 1e-3
    start_lr: float = 2e-4
    final_lr: float = 1e-6
    warmup_steps: int = 0
    warmup_fraction: float = 0.0
    weight_decay: float = 0.04
    final_weight_decay: float = 0.4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 0.0
    precision: str = "fp32"
    device: str = "auto"
    num_workers: int = 0
    log_every: int = 10
    ckpt_every: int = 0
    keep_every: int = 0
    seed: int = 0
    resume: bool = False
    find_unused_parameters: bool = False
    progress_bar: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        for name in _NON_NEGATIVE:
            if not getattr(self, name) >= 0:  # `not >=` also refuses NaN
                raise UserError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not (0 <= self.warmup_fraction < 1 and all(0 <= beta < 1 for beta in self.betas)):
            raise UserError(
                f"train.warmup_fraction and each of train.betas must be in [0, 1), got {self.warmup_fraction} "
                f"and {list(self.betas)}"
            )
        if (self.epochs > 0) == (self.total_steps > 0):
            raise UserError("train: set exactly one of epochs or total_steps to a positive number")
        if self.warmup_steps > 0 and self.warmup_fraction > 0:
            raise UserError("train: set warmup_steps or warmup_fraction, not both")
        if self.precision not in PRECISIONS:
            options = " or ".join(PRECISIONS)
            raise UserError(f"train.precision '{self.precision}' is not supported; use {options}")
        for name in ("batch_size", "accum_steps", "log_every"):
            if getattr(self, name) < 1:
                raise UserError(f"train.{name} must be >= 1, got {getattr(self, name)}")


class Trainer:
    """Trains `method` on `dataset` for `cfg` in `run_dir` (metrics.csv, tb/, latest.pt, curves.png).

    `dataset` items are dicts (see `SeededDataset`); `collate_fn` turns a list of items into a batch
    (None: `default_collate`). Under `torchrun` each process trains on its shard with DDP; only rank 0
    writes files. Call `worldjepa.train.distributed.cleanup()` when the process is done.
    """

    def __init__(
        self,
        method: torch.nn.Module,
        dataset: Any,
        collate_fn: Callable[[list[dict]], Any] | None,
        cfg: TrainConfig,
        run_dir: str | Path,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.cfg, self.run_dir, self.config = cfg, Path(run_dir), config or {}
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise UserError(f"run dir {self.run_dir} is a file, not a folder; pass a folder path")
        self.dist = dist.dist_info()
        self.device = resolve_device(cfg.device, self.dist.local_rank)
        dist.init_distributed(self.dist, self.device)
        seed_everything(cfg.seed + self.dist.rank)

        self.method = method.to(self.device)
        self.optimizer = build_adamw(self.method, cfg.lr, cfg.betas, cfg.eps)
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]

        self.sampler = SeededBatchSampler(
            len(dataset), cfg.batch_size, cfg.seed, rank=self.dist.rank, world_size=self.dist.world_size
        )
        self.loader = DataLoader(
            SeededDataset(dataset),
            batch_sampler=self.sampler,
            collate_fn=collate_fn or default_collate,
            num_workers=cfg.num_workers,
            persistent_workers=cfg.num_workers > 0,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(cfg.seed),  # keeps the global RNG untouched
        )
        self.steps_per_epoch = len(self.sampler) // cfg.accum_steps
        if self.steps_per_epoch == 0:
            need = cfg.batch_size * cfg.accum_steps * self.dist.world_size
            raise UserError(f"dataset has {len(dataset)} samples, fewer than one optimizer step ({need})")
        self.total_steps = cfg.total_steps or cfg.epochs * self.steps_per_epoch
        self.warmup_steps = cfg.warmup_steps or round(cfg.warmup_fraction * self.total_steps)
        self.step = 0

        latest = self.run_dir / LATEST
        if self.dist.is_main and self.run_dir.is_dir():
            remove_stale_checkpoints(self.run_dir)
        if latest.is_file() and not cfg.resume:
            raise UserError(f"{latest} exists; set train.resume=true to continue it, or use a new run dir")
        resumed = cfg.resume and latest.is_file()
        if resumed:
            self._restore(latest)
        self.model = dist.wrap_ddp(self.method, self.device, cfg.find_unused_parameters)
        resume_step = self.step if resumed else None
        self.logger = RunLogger(self.run_dir, resume_step, cfg.tensorboard) if self.dist.is_main else None

    # --- checkpoints -------------------------------------------------------------------------------------

    def _restore(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        saved = {**ckpt["train_config"], "world_size": ckpt["world_size"]}
        current = {**dataclasses.asdict(self.cfg), "world_size": self.dist.world_size}
        keys = (*_RESUME_KEYS, "world_size")
        changed = [f"{k} {saved[k]} -> {current[k]}" for k in keys if saved[k] != current[k]]
        if changed:
            raise UserError(f"cannot resume {path} exactly: {', '.join(changed)}; restore those settings")
        load_model_state(self.method, ckpt["model"], path)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except ValueError as e:
            raise UserError(f"checkpoint {path} optimizer state does not match the model: {e}") from None
        set_rng_state(ckpt["rng"][self.dist.rank])
        self.step = ckpt["step"]

    def save(self) -> None:
        """Write `latest.pt` (rank 0) with every rank's RNG state; collective under DDP. Weights that are
        not finite are never written: the run stops with the last good checkpoint intact."""
        state = self.method.state_dict()
        floats = [t for t in state.values() if t.is_floating_point()]
        finite = torch.stack([torch.isfinite(t).all() for t in floats]).tolist() if floats else []
        if not all(finite):
            raise UserError(
                f"training diverged: {finite.count(False)} of {len(floats)} weight tensors are NaN or infinite "
                f"after step {self.step}; they were not saved (an earlier {LATEST} is intact): {_DIVERGED_FIX}"
            )
        rng = dist.gather_objects(get_rng_state())
        if not self.dist.is_main:
            return
        latest = save_checkpoint(
            self.run_dir / LATEST,
            {
                "step": self.step,
                "epoch": self.step // self.steps_per_epoch,
                "world_size": self.dist.world_size,
                "model": state,
                "optimizer": self.optimizer.state_dict(),
                "rng": rng,
                "train_config": dataclasses.asdict(self.cfg),
                "config": self.config,
            },
        )
        if self.cfg.keep_every and self.step % self.cfg.keep_every == 0:
            keep_copy(latest, self.run_dir / f"step_{self.step:08d}.pt")

    # --- the loop ----------------------------------------------------------------------------------------

    def hparams(self, step: int) -> tuple[float, float]:
        """(learning rate, weight decay) for optimizer step `step` (0-based)."""
        cfg, total = self.cfg, self.total_steps
        lr = warmup_cosine(step, total, self.warmup_steps, cfg.start_lr, cfg.lr, cfg.final_lr)
        return lr, cosine(step, total, cfg.weight_decay, cfg.final_weight_decay)

    def _train_step(self, batches: Iterator[Any]) -> tuple[StepOutput, torch.Tensor, torch.Tensor | None]:
        """One optimizer step over `accum_steps` micro-batches; returns the last output, the mean loss
        (a device tensor: no sync) and the pre-clip gradient norm when clipping is on."""
        cfg, n = self.cfg, self.cfg.accum_steps
        set_hparams(self.optimizer, *self.hparams(self.step))
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=self.device)
        for i in range(n):
            batch = to_device(_next_batch(batches), self.device)
            # under DDP, all-reduce gradients only on the last micro-batch
            skip_sync = self.dist.enabled and i < n - 1
            with self.model.no_sync() if skip_sync else contextlib.nullcontext():
                with autocast(self.device, cfg.precision):
                    out = self.model(batch)
                (out.loss / n).backward()
            loss_sum += out.loss.detach().float()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip) if cfg.grad_clip > 0 else None
        self.optimizer.step()
        self.method.after_optimizer_step(self.step / self.total_steps)
        self.step += 1
        return out, loss_sum / n, grad_norm

    def _log(
        self, out: StepOutput, mean_loss: float, grad_norm: torch.Tensor | None, samples_per_s: float
    ) -> dict[str, float]:
        """Build the row for the step just finished (the only place that syncs with the device) and log it."""
        lr, wd = self.hparams(self.step - 1)
        row = {
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            "loss": mean_loss,
            "lr": lr,
            "wd": wd,
            "samples_per_s": samples_per_s,
        }
        if grad_norm is not None:
            row["grad_norm"] = float(grad_norm)
        if out.embeddings is not None:
            row.update(collapse_metrics(out.embeddings))
        row.update({k: float(v) for k, v in out.metrics.items() if k not in row})
        if self.logger is not None:
            self.logger.log(row)
        return row

    def fit(self) -> dict[str, float]:
        """Train from the current step to `total_steps`; returns the last logged row."""
        cfg, main = self.cfg, self.dist.is_main
        self.method.train()
        show = main and cfg.progress_bar
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not show, unit="step")
        samples_per_step = cfg.batch_size * cfg.accum_steps * self.dist.world_size
        window_loss, window_steps, window_start = torch.zeros((), device=self.device), 0, time.perf_counter()
        row: dict[str, float] = {}
        batches: Iterator[Any] | None = None
        while self.step < self.total_steps:
            epoch, position = divmod(self.step, self.steps_per_epoch)
            if batches is None or position == 0:
                self.sampler.set_epoch(epoch, start_batch=position * cfg.accum_steps)
                batches = iter(self.loader)
            out, loss, grad_norm = self._train_step(batches)
            window_loss += loss
            window_steps += 1
            bar.update(1)

            if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                mean_loss = float(dist.mean_across_ranks(window_loss)) / window_steps
                if not math.isfinite(mean_loss):
                    first = self.step - window_steps + 1
                    raise UserError(
                        f"training diverged: the loss is {mean_loss} in steps {first}-{self.step} (lr "
                        f"{self.hparams(self.step - 1)[0]:.3g}); no checkpoint holds a diverged state: {_DIVERGED_FIX}"
                    )
                speed = window_steps * samples_per_step / (time.perf_counter() - window_start)
                row = self._log(out, mean_loss, grad_norm, speed)
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{row['lr']:.2e}")
                window_loss.zero_()
                window_steps, window_start = 0, time.perf_counter()

            if (cfg.ckpt_every and self.step % cfg.ckpt_every == 0) or self.step == self.total_steps:
                self.save()
        bar.close()
        if self.logger is not None:
            self.logger.close()
            if (self.run_dir / METRICS_CSV).is_file():
                plot_curves(self.run_dir / METRICS_CSV, self.run_dir / "curves.png")
        dist.barrier()
        return row


def _next_batch(batches: Iterator[Any]) -> Any:
    """The next batch; a UserError from a DataLoader worker (a corrupt file) keeps only its own message,
    not the worker's traceback that the DataLoader wraps around it."""
    try:
        return next(batches)
    except UserError as error:
        last = str(error).strip().splitlines()[-1]
        raise UserError(last.removeprefix(f"{UserError.__module__}.{UserError.__qualname__}: ")) from None
