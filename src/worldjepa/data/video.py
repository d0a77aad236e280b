"""Video datasets: a class-per-subfolder folder of video files, and built-in synthetic moving shapes.

Every dataset returns a dict {"video": FloatTensor [3, T, S, S] normalized, "label": int,
"target": FloatTensor [R] (synthetic only)}. `__getitem__` is the deterministic evaluation clip;
`sample(index, generator)` is the augmented training clip (random start, one random crop shared by
all frames) and draws its randomness only from `generator`.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import Dataset

from worldjepa.data.images import (
    SHAPE_NAMES,
    ClassFolderDataset,
    index_rng,
    render_shapes,
    scan_class_folders,
)
from worldjepa.data.transforms import IJEPA_CROP_SCALE, ImageTransform
from worldjepa.errors import UserError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg")
_CODECS = {".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264", ".avi": "mpeg4", ".webm": "libvpx-vp9"}


def write_video(path: str | Path, frames: np.ndarray | torch.Tensor, fps: int = 8) -> None:
    """Encode uint8 RGB frames [T, H, W, 3] to a file; the codec follows the suffix (.mp4, .avi, ...).

    H and W must be even (the yuv420p pixel format halves the colour resolution).
    """
    path = Path(path)
    frames = np.asarray(frames, dtype=np.uint8)
    codec = _CODECS.get(path.suffix.lower())
    if codec is None:
        raise UserError(f"cannot write video {path}: unknown suffix; use one of {', '.join(_CODECS)}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[1] % 2 or frames.shape[2] % 2:
        raise UserError(
            f"cannot write video {path}: frames must be [T, H, W, 3] with even H and W, got "
            f"{list(frames.shape)}; pad or crop the frames"
        )
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _declared_frame_count(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """Frames the header promises: the stream's count (mp4, avi) or duration x frame rate (webm,
    mkv); 0 when the header says neither."""
    if stream.frames:
        return stream.frames
    if container.duration and stream.average_rate:
        return round(container.duration / av.time_base * float(stream.average_rate))
    return 0


def read_video_frames(path: str | Path) -> list[av.VideoFrame]:
    """Decode every frame of the first video stream; an undecodable file is a UserError naming it.

    A file that decodes under 90 % of the frames its header declares is reported as truncated (FFmpeg
    itself stops quietly at the cut). Frames stay in their decoded (YUV) form; `frames_to_tensor`
    converts the few a clip needs.
    """
    fix = "re-encode it with ffmpeg or remove it"
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"could not decode video {path}: it has no video stream; {fix}")
            stream = container.streams.video[0]
            frames = list(container.decode(stream))
            declared = _declared_frame_count(container, stream)
    except (av.FFmpegError, OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or err  # FFmpeg's reason without its repeat of the path
        raise UserError(f"could not decode video {path}: {reason}; {fix}") from err
    if not frames:
        raise UserError(f"could not decode video {path}: no frames decoded; {fix}")
    if len(frames) < 0.9 * declared:
        raise UserError(
            f"could not decode video {path}: truncated, {len(frames)} of {declared} frames decoded; {fix}"
        )
    return frames


def frames_to_tensor(frames: list[av.VideoFrame]) -> torch.Tensor:
    """Decoded frames -> uint8 RGB [T, 3, H, W]."""
    return torch.from_numpy(np.stack([f.to_ndarray(format="rgb24") for f in frames])).permute(0, 3, 1, 2)


def clip_indices(
    num_available: int, num_frames: int, frame_step: int, generator: torch.Generator | None
) -> list[int]:
    """Frame indices of one clip: `num_frames` frames `frame_step` apart.

    The start is centred without a generator and uniform with one. A video shorter than the clip
    repeats its last frame.
    """
    span = (num_frames - 1) * frame_step + 1
    slack = max(num_available - span, 0)
    start = slack // 2 if generator is None else int(torch.randint(slack + 1, (1,), generator=generator))
    return [min(start + t * frame_step, num_available - 1) for t in range(num_frames)]


class VideoFolderDataset(ClassFolderDataset):
    """Videos in root/<class name>/*.mp4|avi|webm...; labels are class folder indices in sorted order.

    Each item decodes its file (PyAV) and takes a clip of `num_frames` frames `frame_step` apart.
    """

    def __init__(
        self,
        root: str | Path,
        num_frames: int = 16,
        frame_step: int = 4,
        image_size: int = 224,
        train: bool = True,
        scale: tuple[float, float] = IJEPA_CROP_SCALE,
        hflip: bool = False,
    ) -> None:
        self.class_names, self.items = scan_class_folders(root, VIDEO_EXTENSIONS, "videos")
        self.num_classes = len(self.class_names)
        self.num_frames = num_frames
        self.frame_step = frame_step
        self.train = train
        self.transform = ImageTransform(image_size, scale=scale, hflip=hflip)

    def _view(self, index: int, generator: torch.Generator | None) -> dict:
        path, label = self.items[index]
        frames = read_video_frames(path)
        picked = [frames[i] for i in clip_indices(len(frames), self.num_frames, self.frame_step, generator)]
        video = self.transform(frames_to_tensor(picked), generator)  # [T, 3, S, S]
        return {"video": video.transpose(0, 1), "label": label}


@functools.lru_cache(maxsize=4)
def _render_moving_shapes(
    num_videos: int, num_frames: int, image_size: int, num_directions: int, split: str, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    sector = 2 * math.pi / num_directions
    params = np.empty((num_videos, 12))
    for i in range(num_videos):
        rng = index_rng(seed, split, i)
        angle = (i % num_directions) * sector + rng.uniform(-0.25, 0.25) * sector
        radius = rng.uniform(0.08, 0.15)
        path_length = rng.uniform(0.25, 0.45)  # over the whole clip, in image sides
        params[i, 0:2] = rng.uniform(0.0, 1.0, size=2)
        params[i, 2:4] = path_length / max(num_frames - 1, 1) * np.array([math.cos(angle), math.sin(angle)])
        params[i, 4] = radius
        params[i, 5] = rng.integers(len(SHAPE_NAMES))
        params[i, 6:9] = rng.uniform(0.55, 1.0, size=3)
        params[i, 9:12] = rng.uniform(0.0, 0.35, size=3)
    params = torch.from_numpy(params).float()
    time = torch.arange(num_frames, dtype=torch.float32).view(1, -1, 1)
    centers = params[:, None, 0:2] + time * params[:, None, 2:4]  # [N, T, 2]

    def per_frame(x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(num_frames, dim=0)

    frames = render_shapes(
        centers.reshape(-1, 2),
        per_frame(params[:, 4]),
        per_frame(params[:, 5].long()),
        per_frame(params[:, 6:9]),
        per_frame(params[:, 9:12]),
        image_size,
        wrap=True,
    )
    videos = frames.view(num_videos, num_frames, 3, image_size, image_size)
    labels = torch.arange(num_videos) % num_directions
    return videos, labels, params[:, 2:4].clone()


class SyntheticVideoDataset(Dataset):
    """Built-in video: one shape moving in a straight line at constant velocity.

    label k = direction of motion at angle about 2*pi*k / num_directions from +x towards +y (down),
    jittered within the middle half of its sector; k = index % num_directions, so classes are
    balanced. target = velocity (vx, vy) in image sides per frame, y pointing down; the shape travels
    0.25-0.45 of the image side over the clip.

    The frame is a torus: a shape leaving on one side re-enters on the other. So every frame shows
    a shape at a uniformly random place whatever its direction, and the direction can only be read
    across frames: the task tests temporal understanding. (Walls would leak the direction into a
    single frame, since a shape moving right must start on the left, and a bounce would change the
    label within the clip.) Example i is a function of (seed, split, i) only; the set is rendered
    once, vectorized, and kept in memory as uint8 (N * T * 3 * S * S bytes).
    """

    def __init__(
        self,
        num_videos: int | None = None,
        num_frames: int = 16,
        image_size: int = 32,
        num_directions: int = 8,
        train: bool = True,
        seed: int = 0,
        scale: tuple[float, float] = IJEPA_CROP_SCALE,
    ) -> None:
        if num_videos is None:
            num_videos = 1000 if train else 250
        split = "train" if train else "test"
        self.videos, self.labels, self.targets = _render_moving_shapes(
            num_videos, num_frames, image_size, num_directions, split, seed
        )
        self.num_classes = num_directions
        self.target_names = ("vx", "vy")
        self.train = train
        self.transform = ImageTransform(image_size, scale=scale)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        return self._view(index, None)

    def sample(self, index: int, generator: torch.Generator) -> dict:
        """Training clip: one random resized crop shared by all frames when `train` (no flip: it would
        mirror the direction), else the evaluation clip."""
        return self._view(index, generator if self.train else None)

    def _view(self, index: int, generator: torch.Generator | None) -> dict:
        video = self.transform(self.videos[index], generator).transpose(0, 1)  # [3, T, S, S]
        return {"video": video, "label": int(self.labels[index]), "target": self.targets[index]}
