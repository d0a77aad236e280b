"""The training engine shared by every method.

Usage: `Trainer(method, dataset, collate_fn, TrainConfig(...), run_dir).fit()`.

A method is an `nn.Module` returning a `StepOutput` (see `method.py`); everything else (schedules,
AdamW groups, bf16, accumulation, clipping, DDP, deterministic data order, checkpoints, exact resume,
logging) lives here.
"""

from worldjepa.train.ema import ema_update
from worldjepa.train.method import Method, StepOutput
from worldjepa.train.trainer import TrainConfig, Trainer

__all__ = ["Method", "StepOutput", "TrainConfig", "Trainer", "ema_update"]
