"""`worldjepa probe`: frozen evaluation of a pretraining run against a random encoder of the same shape.

The pretrained encoder is the run's EMA target encoder (what I-JEPA and V-JEPA evaluate). Both encoders
are probed with the same protocol, seed and data (the preset's built-in evaluation set), so the gap
between the two numbers is what pretraining learned.
"""

from __future__ import annotations

from pathlib import Path

import torch

from worldjepa.config import apply_overrides, load_preset
from worldjepa.errors import UserError
from worldjepa.eval.probe import EncoderComparison, compare_encoders
from worldjepa.pretrain import build_dataset, build_encoder, is_video
from worldjepa.train.checkpoint import LATEST, load_checkpoint, load_model_state
from worldjepa.train.device import resolve_device

TARGET_PREFIX = "target_encoder."


def load_pretrained_encoder(run_dir: Path, cfg: dict) -> torch.nn.Module:
    """The run's target encoder, with weights from run_dir/latest.pt."""
    ckpt = load_checkpoint(run_dir / LATEST)
    state = {k[len(TARGET_PREFIX) :]: v for k, v in ckpt["model"].items() if k.startswith(TARGET_PREFIX)}
    encoder = build_encoder(cfg)
    load_model_state(encoder, state, run_dir / LATEST)
    return encoder.eval()


def run_probe(run_dir: Path, overrides: list[str] | None = None) -> EncoderComparison:
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise UserError(
            f"{run_dir} is not a pretraining run (no config.yaml); run `worldjepa pretrain` first"
        )
    cfg = apply_overrides(load_preset(str(config_path)), overrides or [])
    pretrained = load_pretrained_encoder(run_dir, cfg)
    torch.manual_seed(cfg["train"]["seed"])
    random_init = build_encoder(cfg).eval()
    video = is_video(cfg)
    probe = cfg["probe"]
    return compare_encoders(
        pretrained,
        random_init,
        build_dataset(cfg["data"], video, train=True),
        build_dataset(cfg["data"], video, train=False),
        kind=probe["kind"],
        task=probe["task"],
        epochs=probe["epochs"],
        lr=probe["lr"],
        weight_decay=probe["weight_decay"],
        batch_size=probe["batch_size"],
        seed=cfg["train"]["seed"],
        device=resolve_device(cfg["train"]["device"], 0),
    )
