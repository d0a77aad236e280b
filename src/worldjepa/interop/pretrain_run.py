"""A stage-1 encoder from where it was saved: a pretraining run folder (its EMA target encoder, what
I-JEPA and V-JEPA evaluate) or a worldjepa model folder holding an `encoder` (e.g. released V-JEPA 2
weights from `worldjepa convert --from official`, or an ablation's random-init encoder or raw pixels)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from worldjepa.errors import UserError
from worldjepa.interop.worldjepa_format import CONFIG, load_modules
from worldjepa.models import build_encoder
from worldjepa.nn.vit import VisionTransformer
from worldjepa.presets import PretrainPreset, load_config
from worldjepa.train.checkpoint import LATEST, load_checkpoint, load_model_state

RUN_CONFIG = "config.yaml"
TARGET_PREFIX = "target_encoder."


def run_config(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PretrainPreset:
    """The preset a pretraining run was trained with (its config.yaml), with `overrides`."""
    path = Path(run_dir) / RUN_CONFIG
    if not path.is_file():
        raise UserError(
            f"{run_dir} is not a pretraining run (no {RUN_CONFIG}); run `worldjepa pretrain` first"
        )
    return load_config(path, overrides, PretrainPreset)


def load_run_encoder(run_dir: str | Path, cfg: PretrainPreset | None = None) -> VisionTransformer:
    """The run's target encoder, with weights from run_dir/latest.pt (in eval mode)."""
    run_dir = Path(run_dir)
    cfg = cfg or run_config(run_dir)
    ckpt = load_checkpoint(run_dir / LATEST)
    state = {k[len(TARGET_PREFIX) :]: v for k, v in ckpt["model"].items() if k.startswith(TARGET_PREFIX)}
    encoder = build_encoder(cfg.model, cfg.data.image_size, cfg.num_frames)
    load_model_state(encoder, state, run_dir / LATEST)
    return encoder.eval()


def load_encoder(source: str | Path) -> nn.Module:
    """A pretraining run's target encoder, or the `encoder` of a worldjepa model folder."""
    source = Path(source)
    if (source / CONFIG).is_file():
        return load_modules(source, ["encoder"], expect={"encoder": ("encoder", "pixel_patches")})["encoder"]
    if not (source / RUN_CONFIG).is_file():
        raise UserError(f"{source} is neither a pretraining run nor a worldjepa model folder with an encoder")
    return load_run_encoder(source)
