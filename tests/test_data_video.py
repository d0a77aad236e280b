"""Video files and the synthetic moving-shapes source: clips, determinism, motion, clear errors."""

import math

import numpy as np
import pytest
import torch

from worldjepa.data.video import (
    SyntheticVideoDataset,
    VideoFolderDataset,
    clip_indices,
    frames_to_tensor,
    read_video_frames,
    write_video,
)
from worldjepa.errors import UserError


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ramp_video(num_frames: int, value: int) -> np.ndarray:
    """Smooth frames (easy to encode) whose brightness grows with time: [T, 32, 32, 3] uint8."""
    frames = np.full((num_frames, 32, 32, 3), value, dtype=np.uint8)
    return frames + np.arange(num_frames, dtype=np.uint8).reshape(-1, 1, 1, 1) * 8


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_write_then_read_round_trips(tmp_path, suffix):
    frames = ramp_video(10, 40)
    write_video(tmp_path / f"clip{suffix}", frames)
    decoded = frames_to_tensor(read_video_frames(tmp_path / f"clip{suffix}"))
    assert decoded.shape == (10, 3, 32, 32) and decoded.dtype == torch.uint8
    assert (decoded.float() - torch.from_numpy(frames).permute(0, 3, 1, 2).float()).abs().mean() < 4


def test_write_video_rejects_odd_sizes(tmp_path):
    with pytest.raises(UserError, match="even H and W"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 31, 32, 3), dtype=np.uint8))


def test_clip_indices_centre_sample_and_pad():
    assert clip_indices(20, 4, 2, None) == [6, 8, 10, 12]
    assert clip_indices(5, 4, 2, None) == [0, 2, 4, 4]  # too short: the last frame repeats
    starts = {clip_indices(20, 4, 2, gen(s))[0] for s in range(30)}
    assert starts <= set(range(14)) and len(starts) > 5


def make_folder(root, per_class: int = 2) -> None:
    for label, name in enumerate(("left", "right")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            write_video(root / name / f"{i}.mp4", ramp_video(12, 30 + 100 * label + 10 * i))


def test_video_folder_dataset_returns_clips(tmp_path):
    make_folder(tmp_path)
    data = VideoFolderDataset(tmp_path, num_frames=4, frame_step=2, image_size=16)
    assert (len(data), data.num_classes, data.class_names) == (4, 2, ["left", "right"])
    item = data[2]
    assert item["video"].shape == (3, 4, 16, 16) and item["video"].dtype == torch.float32
    assert item["label"] == 1
    assert item["video"][:, 1:].mean() > item["video"][:, :-1].mean()  # frames stay in time order
    assert torch.equal(data.sample(0, gen(0))["video"], data.sample(0, gen(0))["video"])
    assert not torch.equal(data.sample(0, gen(0))["video"], data.sample(0, gen(1))["video"])


def test_video_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(UserError, match="no videos found in"):
        VideoFolderDataset(tmp_path, num_frames=4, frame_step=1, image_size=16)
    make_folder(tmp_path, per_class=1)
    bad = tmp_path / "left" / "0.mp4"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    data = VideoFolderDataset(tmp_path, num_frames=4, frame_step=1, image_size=16)
    with pytest.raises(UserError, match=r"could not decode video .*left/0\.mp4: .*re-encode it with ffmpeg"):
        data[0]


def test_truncated_file_that_still_decodes_a_little_is_reported(tmp_path):
    path = tmp_path / "cut.mkv"
    write_video(path, (np.random.default_rng(0).random((10, 32, 48, 3)) * 255).astype(np.uint8))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match=r"cut\.mkv: truncated, \d+ of 10 frames decoded"):
        read_video_frames(path)


def test_synthetic_video_is_deterministic_and_balanced():
    data = SyntheticVideoDataset(num_videos=16, num_frames=6, image_size=24, num_directions=4)
    item = data[1]
    assert item["video"].shape == (3, 6, 24, 24) and item["target"].shape == (2,)
    assert data.num_classes == 4 and data.target_names == ("vx", "vy")
    assert torch.equal(torch.bincount(data.labels), torch.full((4,), 4))
    again = SyntheticVideoDataset(num_videos=24, num_frames=6, image_size=24, num_directions=4)
    assert torch.equal(again.videos[:16], data.videos)
    assert torch.equal(data.sample(2, gen(0))["video"], data.sample(2, gen(0))["video"])
    assert not torch.equal(data.sample(2, gen(0))["video"], data.sample(2, gen(1))["video"])


def shape_mask(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [..., 3, S, S] -> float [..., S, S]: 1 on the shape (every channel >= 140), 0 on the
    background (every channel <= 89)."""
    return (frames.float().mean(-3) > 115).float()


def circular_shift(before: torch.Tensor, after: torch.Tensor) -> tuple[int, int]:
    """The (dx, dy) roll in pixels that best maps mask `before` [S, S] onto `after` on a torus."""
    correlation = torch.fft.ifft2(torch.fft.fft2(after) * torch.fft.fft2(before).conj()).real
    size = before.shape[0]
    dy, dx = divmod(int(correlation.argmax()), size)
    return (dx + size // 2) % size - size // 2, (dy + size // 2) % size - size // 2


def test_synthetic_velocity_and_label_match_the_motion_between_frames():
    data = SyntheticVideoDataset(num_videos=32, num_frames=8, image_size=48, num_directions=8)
    for video, label, (vx, vy) in zip(data.videos, data.labels, data.targets, strict=True):
        dx, dy = circular_shift(shape_mask(video[0]), shape_mask(video[-1]))
        assert abs(dx / 48 - 7 * vx) < 1.5 / 48 and abs(dy / 48 - 7 * vy) < 1.5 / 48
        angle = math.atan2(vy, vx) % (2 * math.pi)
        assert round(angle / (2 * math.pi / 8)) % 8 == label


def test_no_single_frame_reveals_the_direction():
    """On the torus, where the shape is in a frame does not depend on where it is going."""
    data = SyntheticVideoDataset(num_videos=400, num_frames=4, image_size=16, num_directions=4)
    mask = shape_mask(data.videos[:, 0])  # [N, S, S]
    coords = torch.arange(16, dtype=torch.float32)
    mean_x = (mask.sum(1) * coords).sum(1) / mask.sum((1, 2))  # [N] horizontal centre of mass
    rightward, leftward = mean_x[data.labels == 0].mean(), mean_x[data.labels == 2].mean()
    assert abs(rightward - leftward) < 1.0
