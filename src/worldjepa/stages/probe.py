"""`worldjepa probe`: frozen evaluation of a pretraining run against a random encoder of the same shape.

The pretrained encoder is the run's EMA target encoder (what I-JEPA and V-JEPA evaluate). Both encoders
are probed with the same protocol, seed and data (the preset's built-in evaluation set), so the gap
between the two numbers is what pretraining learned.
"""

from __future__ import annotations

from pathlib import Path

import torch

from worldjepa.data.datasets import build_dataset
from worldjepa.eval.frozen import EncoderComparison, compare_encoders
from worldjepa.interop.pretrain_run import load_run_encoder, run_config
from worldjepa.models import build_encoder
from worldjepa.train.device import resolve_device


def run_probe(run_dir: Path, overrides: list[str] | None = None) -> EncoderComparison:
    cfg = run_config(run_dir, overrides or [])
    pretrained = load_run_encoder(run_dir, cfg)
    torch.manual_seed(cfg.train.seed)
    random_init = build_encoder(cfg.model, cfg.data.image_size, cfg.num_frames).eval()
    return compare_encoders(
        pretrained,
        random_init,
        build_dataset(cfg.data, cfg.video, train=True),
        build_dataset(cfg.data, cfg.video, train=False),
        cfg.probe,
        seed=cfg.train.seed,
        device=resolve_device(cfg.train.device, 0),
    )
