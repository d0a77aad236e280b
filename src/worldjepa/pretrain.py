"""Assemble a pretraining run from a preset: datasets, masks, encoder, predictor, method, trainer.

A preset (configs/*.yaml) has the sections `method` (ijepa | vjepa), `data`, `model`, `masks`,
`ema`, `regularizer`, `train` and `probe`, and V-JEPA presets `vjepa21`. `run_pretrain` trains and writes everything under the
run directory: config.yaml, metrics.csv, latest.pt, curves.png and masks.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from worldjepa.config import build
from worldjepa.data.images import DigitsDataset, ImageFolderDataset, ShapesDataset
from worldjepa.data.trajectories import TrajectoryDataset
from worldjepa.data.transforms import normalize, to_float
from worldjepa.data.video import SyntheticVideoDataset, VideoFolderDataset
from worldjepa.errors import UserError
from worldjepa.masks import MaskCollator, MultiBlock2D, MultiBlock2DConfig, MultiBlock3D, MultiBlock3DConfig
from worldjepa.methods.ijepa import IJEPA
from worldjepa.methods.jepa import JEPA
from worldjepa.methods.regularizers import RegularizerConfig
from worldjepa.methods.vjepa import VJEPA, VJEPA21Config
from worldjepa.nn.predictor import MaskedPredictor
from worldjepa.nn.vit import VisionTransformer
from worldjepa.train import distributed
from worldjepa.train.rng import seed_everything
from worldjepa.train.trainer import TrainConfig, Trainer

METHODS = ("ijepa", "vjepa")
IMAGE_DATASETS = ("shapes", "digits", "folder")
VIDEO_DATASETS = ("synthetic_video", "video_folder", "trajectories")


class TrajectoryVideo(torch.utils.data.Dataset):
    """Clips of a recorded trajectory folder as action-free video: stage 1 of V-JEPA 2-style training.

    Items are {"video": normalized float [3, T, H, W]}; actions and states are not used in stage 1.
    """

    def __init__(self, root: str | Path, num_frames: int, frame_step: int):
        self.clips = TrajectoryDataset(root, clip_length=num_frames, frame_skip=frame_step)
        if len(self.clips) == 0:
            raise UserError(
                f"trajectory folder {root} has no episode of {num_frames} frames at step {frame_step}; "
                "collect longer episodes or lower data.num_frames / data.frame_step"
            )

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        frames = normalize(to_float(self.clips[index]["frames"]))  # [T, 3, H, W]
        return {"video": frames.transpose(0, 1).contiguous()}


def is_video(cfg: dict[str, Any]) -> bool:
    return cfg["method"] == "vjepa"


def build_dataset(data: dict[str, Any], video: bool, train: bool) -> torch.utils.data.Dataset:
    """The dataset named by `data.dataset` (train or held-out split)."""
    name, size = data["dataset"], data["image_size"]
    valid = VIDEO_DATASETS if video else IMAGE_DATASETS
    if name not in valid:
        raise UserError(
            f"data.dataset '{name}' is not available for this method; use one of {', '.join(valid)}"
        )
    if name == "trajectories":
        if not data.get("root"):
            raise UserError("data.dataset=trajectories needs data.root=DIR (made by `worldjepa collect`)")
        return TrajectoryVideo(data["root"], data["num_frames"], data["frame_step"])
    if name in ("folder", "video_folder"):
        if not data.get("root"):
            raise UserError(
                f"data.dataset={name} needs data.root=PATH (a folder with one subfolder per class)"
            )
        root = Path(data["root"]) / ("train" if train else "val")
        if name == "folder":
            return ImageFolderDataset(root, size, train=train)
        return VideoFolderDataset(root, data["num_frames"], data["frame_step"], size, train=train)
    count = data["num_train"] if train else data["num_test"]
    if name == "shapes":
        return ShapesDataset(count, size, train=train, seed=data["seed"])
    if name == "digits":
        return DigitsDataset(size, train=train)
    return SyntheticVideoDataset(count, data["num_frames"], size, train=train, seed=data["seed"])


def token_geometry(cfg: dict[str, Any]) -> dict[str, Any]:
    """What the encoder and its predictor share: input grid, block shape, position encoding."""
    m, data = cfg["model"], cfg["data"]
    return {
        "img_size": data["image_size"],
        "patch_size": m["patch_size"],
        "num_frames": data["num_frames"] if is_video(cfg) else 1,
        "tubelet_size": m["tubelet_size"],
        "mlp_ratio": m["mlp_ratio"],
        "pos_embed": m["pos_embed"],
        "rope_compat": m["rope_compat"],
    }


def build_encoder(cfg: dict[str, Any]) -> VisionTransformer:
    m = cfg["model"]
    return VisionTransformer(
        embed_dim=m["embed_dim"], depth=m["depth"], num_heads=m["num_heads"], **token_geometry(cfg)
    )


def build_predictor(cfg: dict[str, Any], num_levels: int = 1) -> MaskedPredictor:
    m, video = cfg["model"], is_video(cfg)
    return MaskedPredictor(
        num_levels=num_levels,
        embed_dim=m["embed_dim"],
        predictor_embed_dim=m["predictor_embed_dim"],
        depth=m["predictor_depth"],
        num_heads=m["predictor_num_heads"],
        num_mask_tokens=len(cfg["masks"]["generators"]) if video else 1,
        zero_init_mask_tokens=video,  # V-JEPA zero-initialises its mask tokens, I-JEPA draws its one
        **token_geometry(cfg),
    )


def build_method(cfg: dict[str, Any]) -> JEPA:
    if cfg["method"] not in METHODS:
        raise UserError(f"method '{cfg['method']}' is unknown; use one of {', '.join(METHODS)}")
    regularizer = build(RegularizerConfig, cfg["regularizer"], "regularizer")
    if not is_video(cfg):
        return IJEPA(build_encoder(cfg), build_predictor(cfg), tuple(cfg["ema"]), regularizer)
    # runs saved before V-JEPA 2.1's options existed have no `vjepa21` section: they ran without them
    options = build(VJEPA21Config, cfg.get("vjepa21", {}), "vjepa21")
    predictor = build_predictor(cfg, num_levels=len(options.levels) + 1)
    return VJEPA(build_encoder(cfg), predictor, tuple(cfg["ema"]), regularizer, options)


def build_mask_collator(cfg: dict[str, Any], encoder: VisionTransformer) -> MaskCollator:
    if is_video(cfg):
        return MaskCollator(MultiBlock3D(encoder.grid, build(MultiBlock3DConfig, cfg["masks"], "masks")))
    return MaskCollator(MultiBlock2D(encoder.grid[1:], build(MultiBlock2DConfig, cfg["masks"], "masks")))


def run_pretrain(cfg: dict[str, Any], run_dir: str | Path) -> dict[str, float]:
    """Train the preset's method in `run_dir`; returns the final logged metrics."""
    run_dir = Path(run_dir)
    train_cfg = build(TrainConfig, cfg["train"], "train")
    seed_everything(train_cfg.seed)  # the weights' initialisation is part of what the seed fixes
    method = build_method(cfg)
    dataset = build_dataset(cfg["data"], is_video(cfg), train=True)
    collator = build_mask_collator(cfg, method.encoder)
    trainer = Trainer(method, dataset, collator, train_cfg, run_dir, config=cfg)
    if trainer.dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        save_mask_picture(collator, dataset, is_video(cfg), method.encoder, run_dir / "masks.png")
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
