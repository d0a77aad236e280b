"""The dataset a pretraining preset names (`data:` section): built-in procedural sets, image and video
folders, or a recorded trajectory folder seen as action-free video (stage 1 of V-JEPA 2-style training)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from worldjepa.data.images import DigitsDataset, ImageFolderDataset, ShapesDataset
from worldjepa.data.scene_augment import scene_augment
from worldjepa.data.trajectories import TrajectoryDataset
from worldjepa.data.transforms import normalize, to_float
from worldjepa.data.video import SyntheticVideoDataset, VideoFolderDataset
from worldjepa.errors import UserError

IMAGE_DATASETS = ("shapes", "digits", "folder")
VIDEO_DATASETS = ("synthetic_video", "video_folder", "trajectories")


@dataclass
class DataConfig:
    """The `data:` section of a pretraining preset.

    dataset: shapes | digits | folder (root/train, root/val, one subfolder per class) for images;
    synthetic_video | video_folder | trajectories (a `worldjepa collect` folder, or a list of them whose
    clips are pooled: several tasks or scenes of one robot) for video.
    num_frames / frame_step: clip length and stride (video); num_train / num_test / seed: size and seed of
    the procedural sets (shapes, synthetic_video). scene_augment (trajectories only): the share of training
    clips drawn in a random scene look, one look per clip (`worldjepa.data.scene_augment`; 0 = the frames
    as recorded): on a fixed camera a token's place alone predicts most of its target, and other looks
    take that shortcut away.
    """

    dataset: Literal["shapes", "digits", "folder", "synthetic_video", "video_folder", "trajectories"] = (
        "shapes"
    )
    root: str | list[str] | None = None
    image_size: int = 64
    num_frames: int = 1
    frame_step: int = 1
    num_train: int = 4000
    num_test: int = 1000
    seed: int = 0
    scene_augment: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.scene_augment <= 1.0 or (self.scene_augment and self.dataset != "trajectories"):
            raise UserError(
                f"data.scene_augment is a share in [0, 1] of trajectory clips, got {self.scene_augment} with "
                f"data.dataset={self.dataset}"
            )
        for name in ("image_size", "num_frames", "frame_step", "num_train", "num_test"):
            if getattr(self, name) < 1:
                raise UserError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if self.dataset in ("folder", "video_folder", "trajectories") and not self.root:
            made_by = "`worldjepa collect`" if self.dataset == "trajectories" else "one subfolder per class"
            raise UserError(f"data.dataset={self.dataset} needs data.root=DIR ({made_by})")
        if isinstance(self.root, list) and self.dataset != "trajectories":
            raise UserError(f"data.dataset={self.dataset} reads one folder; give data.root a single DIR")

    def roots(self) -> list[Path]:
        """The data folders: `root` as a list (several trajectory folders pool their clips)."""
        if self.root is None:
            return []
        return [Path(r) for r in ([self.root] if isinstance(self.root, str) else self.root)]


class TrajectoryVideo(torch.utils.data.Dataset):
    """Clips of a recorded trajectory folder as action-free video: stage 1 of V-JEPA 2-style training.

    Items are {"video": normalized float [3, T, H, W]}; actions and states are not used in stage 1.
    `sample(index, generator)`, the training view, gives a share `scene_augment` of the clips a random
    scene look (one per clip).
    """

    def __init__(
        self, root: str | Path, num_frames: int, frame_step: int, image_size: int, scene_augment: float = 0.0
    ):
        self.scene_augment = scene_augment
        self.clips = TrajectoryDataset(root, clip_length=num_frames, frame_skip=frame_step)
        height, width = self.clips.meta["image_size"]
        if (height, width) != (image_size, image_size):  # masks and the encoder's grid follow image_size
            raise UserError(
                f"{root} holds {height}x{width} frames but data.image_size is {image_size}: the masks would "
                f"cover part of each frame only; set data.image_size={height} or collect at {image_size} px"
                + ("" if height == width else " (square frames)")
            )
        if len(self.clips) == 0:
            raise UserError(
                f"trajectory folder {root} has no episode of {num_frames} frames at step {frame_step}; "
                "collect longer episodes or lower data.num_frames / data.frame_step"
            )

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self._view(index, None)

    def sample(self, index: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return self._view(index, generator)

    def _view(self, index: int, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        frames = to_float(self.clips[index]["frames"])  # [T, 3, H, W]
        if generator is not None and torch.rand((), generator=generator) < self.scene_augment:
            frames = scene_augment(frames, generator, group=len(frames))
        return {"video": normalize(frames).transpose(0, 1).contiguous()}


class PooledDataset(torch.utils.data.ConcatDataset):
    """Several trajectory folders' clips as one dataset, keeping each part's training view (`sample`)."""

    def sample(self, index: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        part = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[part - 1] if part else 0
        return self.datasets[part].sample(index - start, generator)


def build_dataset(data: DataConfig, video: bool, train: bool) -> torch.utils.data.Dataset:
    """The dataset named by `data.dataset` (train or held-out split) for an image or a video method."""
    name, size = data.dataset, data.image_size
    valid = VIDEO_DATASETS if video else IMAGE_DATASETS
    if name not in valid:
        raise UserError(
            f"data.dataset '{name}' is not available for this method; use one of {', '.join(valid)}"
        )
    if name == "trajectories":
        share = data.scene_augment if train else 0.0
        parts = [
            TrajectoryVideo(r, data.num_frames, data.frame_step, data.image_size, share) for r in data.roots()
        ]
        return parts[0] if len(parts) == 1 else PooledDataset(parts)
    if name in ("folder", "video_folder"):
        root = Path(data.root) / ("train" if train else "val")
        if name == "folder":
            return ImageFolderDataset(root, size, train=train)
        return VideoFolderDataset(root, data.num_frames, data.frame_step, size, train=train)
    count = data.num_train if train else data.num_test
    if name == "shapes":
        return ShapesDataset(count, size, train=train, seed=data.seed)
    if name == "digits":
        return DigitsDataset(size, train=train)
    return SyntheticVideoDataset(count, data.num_frames, size, train=train, seed=data.seed)
