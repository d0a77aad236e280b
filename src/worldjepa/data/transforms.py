"""Image and video transforms without torchvision: random resized crop, flip, resize, normalize.

Every random choice is drawn from a `torch.Generator` the caller passes in, so a training run that
seeds its generators is reproducible and resumable. A video is a stack of frames [T, 3, H, W] and
gets one crop shared by all its frames (the motion between frames must stay intact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# I-JEPA pretrains with random resized crops of 30-100 % of the image area and no other augmentation.
IJEPA_CROP_SCALE = (0.3, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)


@dataclass(frozen=True)
class CropBox:
    """A pixel rectangle: rows [top, top + height), columns [left, left + width)."""

    top: int
    left: int
    height: int
    width: int


def random_resized_crop_box(
    height: int,
    width: int,
    generator: torch.Generator,
    scale: tuple[float, float] = IJEPA_CROP_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
    attempts: int = 10,
) -> CropBox:
    """Draw a box covering `scale` of the area with aspect ratio (w / h) in `ratio`.

    The aspect ratio is drawn log-uniformly so that 3/4 and 4/3 are equally likely. After `attempts`
    boxes that do not fit, fall back to the largest centred box whose ratio is clamped into `ratio`.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(attempts):
        u = torch.rand(4, generator=generator).tolist()
        target_area = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_lo + (log_hi - log_lo) * u[1])
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = min(int(u[2] * (height - h + 1)), height - h)
            left = min(int(u[3] * (width - w + 1)), width - w)
            return CropBox(top, left, h, w)
    aspect = min(max(width / height, ratio[0]), ratio[1])
    if width / height > aspect:
        h, w = height, round(height * aspect)
    else:
        h, w = round(width / aspect), width
    return CropBox((height - h) // 2, (width - w) // 2, h, w)


def center_square_box(height: int, width: int) -> CropBox:
    """The largest centred square: the deterministic (evaluation) crop."""
    side = min(height, width)
    return CropBox((height - side) // 2, (width - side) // 2, side, side)


def crop_resize(frames: torch.Tensor, box: CropBox, size: int) -> torch.Tensor:
    """Cut `box` out of float frames [..., C, H, W] and resize it bilinearly to [..., C, size, size].

    Antialiasing keeps large video frames from aliasing when they shrink to a small model input.
    """
    crop = frames[..., box.top : box.top + box.height, box.left : box.left + box.width]
    if box.height == size and box.width == size:
        return crop
    lead = crop.shape[:-3]
    flat = crop.reshape(-1, *crop.shape[-3:])
    out = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out.reshape(*lead, *out.shape[-3:])


def normalize(
    frames: torch.Tensor, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
) -> torch.Tensor:
    """Standardize float frames [..., 3, H, W] in [0, 1] per channel."""
    mean_t = torch.tensor(mean, dtype=frames.dtype, device=frames.device).view(-1, 1, 1)
    std_t = torch.tensor(std, dtype=frames.dtype, device=frames.device).view(-1, 1, 1)
    return (frames - mean_t) / std_t


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames in [0, 255] -> float32 in [0, 1]; float input is returned as float32."""
    if frames.dtype == torch.uint8:
        return frames.float().div_(255.0)
    return frames.float()


class ImageTransform:
    """uint8 or [0, 1] frames [..., 3, H, W] -> normalized float frames [..., 3, S, S].

    With a generator: random resized crop (and a horizontal flip if `hflip`), the training view.
    Without one: the centred square resized to S, the deterministic evaluation view. Leading
    dimensions (e.g. T for a video) share the same crop and flip.
    """

    def __init__(
        self,
        image_size: int,
        scale: tuple[float, float] = IJEPA_CROP_SCALE,
        ratio: tuple[float, float] = CROP_RATIO,
        hflip: bool = False,
    ) -> None:
        self.image_size = image_size
        self.scale = scale
        self.ratio = ratio
        self.hflip = hflip

    def __call__(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        height, width = frames.shape[-2:]
        if generator is None:
            box = center_square_box(height, width)
        else:
            box = random_resized_crop_box(height, width, generator, self.scale, self.ratio)
        out = crop_resize(to_float(frames), box, self.image_size)
        if generator is not None and self.hflip and torch.rand(1, generator=generator).item() < 0.5:
            out = out.flip(-1)
        return normalize(out)
