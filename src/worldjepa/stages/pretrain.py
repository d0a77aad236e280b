"""Stage 1, `worldjepa pretrain`: self-supervised pretraining (I-JEPA on images, V-JEPA on video) from a
`PretrainPreset`: dataset, masks, encoder, predictor, method, trainer.

`run_pretrain` trains and writes everything under the run directory: config.yaml (the complete preset),
metrics.csv, latest.pt, curves.png and masks.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from torch import nn

from worldjepa.config import to_dict
from worldjepa.data.datasets import build_dataset
from worldjepa.interop.pretrain_run import RUN_CONFIG
from worldjepa.masks import MaskCollator
from worldjepa.models import build_mask_collator, build_method
from worldjepa.presets import PretrainPreset
from worldjepa.train import distributed
from worldjepa.train.rng import seed_everything
from worldjepa.train.trainer import Trainer


def run_pretrain(cfg: PretrainPreset, run_dir: str | Path) -> dict[str, float]:
    """Train the preset's method in `run_dir`; returns the final logged metrics."""
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed)  # the weights' initialisation is part of what the seed fixes
    method = build_method(cfg)
    dataset = build_dataset(cfg.data, cfg.video, train=True)
    collator = build_mask_collator(cfg.masks, method.encoder)
    trainer = Trainer(method, dataset, collator, cfg.train, run_dir, config=to_dict(cfg))
    if trainer.dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RUN_CONFIG).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        save_mask_picture(collator, dataset, cfg.video, method.encoder, run_dir / "masks.png")
    try:
        return trainer.fit()
    finally:
        distributed.cleanup()


def save_mask_picture(
    collator: MaskCollator, dataset: Any, video: bool, encoder: nn.Module, path: Path
) -> None:
    """Draw the masks of one batch of the run's data over its images (or video frames)."""
    from worldjepa.viz.masks import save_mask_grid

    samples = [{**dataset[i], "seed": i} for i in range(4)]
    batch = collator(samples)
    grid = encoder.grid if video else encoder.grid[1:]
    pixels = batch["video" if video else "image"]
    save_mask_grid(path, pixels, batch["context"], batch["targets"], grid, tubelet_size=encoder.tubelet_size)
