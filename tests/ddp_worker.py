"""Toy method and dataset for the training-engine tests, and a torchrun entry point for the DDP test.

Run: `python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_worker.py OUT_DIR`
trains one step (2 ranks x batch 4, 2 micro-batches) and saves rank 0's gradients to OUT_DIR/grads.pt.
"""

from __future__ import annotations

import copy
import sys

import torch
import torch.nn.functional as F
from torch import nn

from worldjepa.train import StepOutput, TrainConfig, Trainer, ema_update
from worldjepa.train import distributed as dist
from worldjepa.train.schedules import linear

DIM = 8


class ToyDataset:
    """`n` fixed random vectors; `sample` adds generator-driven noise, like a random augmentation."""

    def __init__(self, n: int = 40) -> None:
        self.x = torch.randn(n, DIM, generator=torch.Generator().manual_seed(123))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[index]}

    def sample(self, index: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"x": self.x[index] + 0.1 * torch.randn(DIM, generator=generator)}


class ToyMethod(nn.Module):
    """A JEPA in miniature: online MLP + predictor regress an EMA target's features.

    `stochastic` adds dropout and global-RNG input noise (to test RNG restore on resume);
    `crash_at` raises after that many optimizer steps (a simulated kill).
    """

    def __init__(self, stochastic: bool = True, crash_at: int | None = None) -> None:
        super().__init__()
        p = 0.2 if stochastic else 0.0
        self.online = nn.Sequential(
            nn.Linear(DIM, 16), nn.LayerNorm(16), nn.GELU(), nn.Dropout(p), nn.Linear(16, DIM)
        )
        self.predictor = nn.Linear(DIM, DIM)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.stochastic, self.crash_at, self.steps_done = stochastic, crash_at, 0

    def forward(self, batch: dict[str, torch.Tensor]) -> StepOutput:
        x = batch["x"]
        noisy = x + 0.05 * torch.randn_like(x) if self.stochastic else x
        z = self.online(noisy)
        with torch.no_grad():
            t = F.layer_norm(self.target(x), (DIM,))
        loss = F.smooth_l1_loss(self.predictor(z).float(), t.float())
        return StepOutput(loss, {"z_norm": z.detach().norm(dim=-1).mean()}, z.detach())

    def after_optimizer_step(self, progress: float) -> None:
        ema_update(self.target, self.online, linear(progress, 1.0, 0.99, 1.0))
        self.steps_done += 1
        if self.steps_done == self.crash_at:
            raise KeyboardInterrupt("simulated kill")


def toy_config(**overrides) -> TrainConfig:
    """Small, fast, deterministic settings shared by the tests."""
    base = dict(
        total_steps=1,
        batch_size=4,
        accum_steps=2,
        lr=1e-2,
        start_lr=1e-3,
        final_lr=1e-4,
        warmup_steps=2,
        device="cpu",
        log_every=1,
        tensorboard=False,
        progress_bar=False,
        seed=0,
    )
    return TrainConfig(**{**base, **overrides})


def grads(method: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}


if __name__ == "__main__":
    out_dir = sys.argv[1]
    torch.manual_seed(0)
    method = ToyMethod(stochastic=False)
    trainer = Trainer(method, ToyDataset(64), None, toy_config(), f"{out_dir}/run")
    trainer.fit()
    if trainer.dist.is_main:
        torch.save({"grads": grads(method), "params": dict(method.named_parameters())}, f"{out_dir}/grads.pt")
    dist.cleanup()
