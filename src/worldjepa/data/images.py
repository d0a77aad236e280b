"""Image datasets: a class-per-subfolder folder on disk and two built-in offline sets.

Every dataset is map-style and returns a dict {"image": FloatTensor [3, S, S] normalized,
"label": int, "target": FloatTensor [R] (built-in shapes only)}. `__getitem__` is the deterministic
evaluation view; `sample(index, generator)` is the augmented training view and draws its randomness
only from `generator`, so training is reproducible and resumable.

The built-in sets (`DigitsDataset`, `ShapesDataset`) need no download and are small enough for a
CPU: they are the frozen-evaluation sets that show a pretrained encoder beats a random one.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from worldjepa.data.transforms import IJEPA_CROP_SCALE, ImageTransform
from worldjepa.errors import UserError, one_line

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SHAPE_NAMES = ("circle", "square", "triangle", "cross")


def scan_class_folders(root: str | Path, extensions: tuple[str, ...], what: str) -> tuple[list[str], list]:
    """Find files under root/<class>/... -> (sorted class names, [(path, label), ...]).

    `what` ("images", "videos") only words the error messages.
    """
    root = Path(root)
    examples = ", ".join(extensions[:2])
    if not root.is_dir():
        raise UserError(f"dataset folder {root} does not exist; pass a folder with one subfolder per class")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    items = []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
        empty = next((p for p in files if p.stat().st_size == 0), None)  # cheap: found before any work
        if empty is not None:
            raise UserError(f"{empty} is empty (0 bytes); replace the file or remove it")
        if not files:
            raise UserError(
                f"class folder {class_dir} has no {what}; add {examples} files to it or remove it"
            )
        items.extend((path, label) for path in files)
    if not items:
        raise UserError(
            f"no {what} found in {root}; expected class subfolders with {examples} files "
            f"(e.g. {root}/<class name>/0001{extensions[0]})"
        )
    return [d.name for d in class_dirs], items


def read_image(path: Path) -> torch.Tensor:
    """Decode an image file to uint8 RGB [3, H, W]; a file PIL cannot read is a UserError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
    except (OSError, ValueError, UnidentifiedImageError) as err:
        raise UserError(
            f"could not read image {path}: {one_line(err)}; replace the file or remove it"
        ) from err
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


class ClassFolderDataset(Dataset):
    """Files in root/<class name>/...: `__getitem__` is the deterministic evaluation view and
    `sample(index, generator)` the random training view; subclasses define `_view`."""

    items: list
    train: bool

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self._view(index, None)

    def sample(self, index: int, generator: torch.Generator) -> dict:
        """Training view (random crop, random clip start) when `train`, else the evaluation view."""
        return self._view(index, generator if self.train else None)

    def _view(self, index: int, generator: torch.Generator | None) -> dict:
        raise NotImplementedError


class ImageFolderDataset(ClassFolderDataset):
    """Images in root/<class name>/*.png|jpg...; labels are class folder indices in sorted order.

    Images are read lazily, so a corrupt file is reported when it is first read.
    """

    def __init__(
        self,
        root: str | Path,
        image_size: int,
        train: bool = True,
        scale: tuple[float, float] = IJEPA_CROP_SCALE,
        hflip: bool = False,
    ) -> None:
        self.class_names, self.items = scan_class_folders(root, IMAGE_EXTENSIONS, "images")
        self.num_classes = len(self.class_names)
        self.train = train
        self.transform = ImageTransform(image_size, scale=scale, hflip=hflip)

    def _view(self, index: int, generator: torch.Generator | None) -> dict:
        path, label = self.items[index]
        return {"image": self.transform(read_image(path), generator), "label": label}


class InMemoryImageDataset(Dataset):
    """Images held as uint8 [N, 3, S, S] with labels [N] and optional regression targets [N, R]."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int,
        train: bool,
        targets: torch.Tensor | None = None,
        target_names: tuple[str, ...] = (),
        scale: tuple[float, float] = IJEPA_CROP_SCALE,
    ) -> None:
        self.images = images
        self.labels = labels
        self.targets = targets
        self.target_names = target_names
        self.num_classes = num_classes
        self.train = train
        self.transform = ImageTransform(images.shape[-1], scale=scale)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        return self._view(index, None)

    def sample(self, index: int, generator: torch.Generator) -> dict:
        """Training view: a random resized crop when `train`, else the evaluation view.

        Labels and targets describe the uncropped image; the crop is for self-supervised pretraining,
        and probes read the evaluation view.
        """
        return self._view(index, generator if self.train else None)

    def _view(self, index: int, generator: torch.Generator | None) -> dict:
        item = {"image": self.transform(self.images[index], generator), "label": int(self.labels[index])}
        if self.targets is not None:
            item["target"] = self.targets[index]
        return item


@functools.lru_cache(maxsize=4)
def _upsampled_digits(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images).float().div(16.0).unsqueeze(1)  # [N, 1, 8, 8] in [0, 1]
    big = F.interpolate(small, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = big.clamp(0, 1).mul(255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return images, torch.from_numpy(digits.target).long()


class DigitsDataset(InMemoryImageDataset):
    """scikit-learn's 1,797 handwritten digits (8x8, bundled offline), upsampled to 3 x S x S; 10 classes.

    The train/test split is stratified and fixed (random_state 0), so every run sees the same split.
    """

    def __init__(self, image_size: int = 32, train: bool = True, test_fraction: float = 0.2) -> None:
        from sklearn.model_selection import train_test_split

        images, labels = _upsampled_digits(image_size)
        train_idx, test_idx = train_test_split(
            np.arange(len(labels)), test_size=test_fraction, stratify=labels.numpy(), random_state=0
        )
        idx = torch.from_numpy(np.sort(train_idx if train else test_idx))
        super().__init__(images[idx], labels[idx], num_classes=10, train=train)


def _shape_mask(shape_id: int, dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Inside-test of one shape kind. dx [n, 1, S] and dy [n, S, 1] are signed offsets from the centre
    (y down), r [n, 1, 1] the half-size -> bool [n, S, S]."""
    ax, ay = dx.abs(), dy.abs()
    if shape_id == 0:  # circle
        return dx**2 + dy**2 <= r**2
    if shape_id == 1:  # square of about the circle's area
        return (ax <= 0.85 * r) & (ay <= 0.85 * r)
    if shape_id == 2:  # triangle, apex up
        return (ay <= r) & (ax <= (dy + r) / 2)
    return ((ax <= r / 3) & (ay <= r)) | ((ay <= r / 3) & (ax <= r))  # cross


def render_shapes(
    centers: torch.Tensor,
    radii: torch.Tensor,
    shape_ids: torch.Tensor,
    colors: torch.Tensor,
    backgrounds: torch.Tensor,
    image_size: int,
    wrap: bool = False,
    chunk: int = 4096,
) -> torch.Tensor:
    """Rasterize one flat shape per image, vectorized over images -> uint8 [N, 3, S, S].

    centers [N, 2] are (x, y) in [0, 1] of the image side (y points down), radii [N] are half-sizes in
    the same unit, shape_ids [N] index SHAPE_NAMES, colors and backgrounds [N, 3] are RGB in [0, 1].
    With `wrap` the image is a torus: a shape crossing an edge re-enters on the opposite side.
    Images are drawn `chunk` at a time to bound the float temporaries.
    """
    coords = (torch.arange(image_size, dtype=torch.float32) + 0.5) / image_size
    mask = torch.empty(len(centers), image_size, image_size, dtype=torch.bool)
    for start in range(0, len(centers), chunk):
        for shape_id in range(len(SHAPE_NAMES)):
            idx = start + (shape_ids[start : start + chunk] == shape_id).nonzero().squeeze(1)
            dx = coords.view(1, 1, -1) - centers[idx, 0].view(-1, 1, 1)
            dy = coords.view(1, -1, 1) - centers[idx, 1].view(-1, 1, 1)
            if wrap:  # shortest offset on the torus, in [-0.5, 0.5)
                dx, dy = (dx + 0.5) % 1.0 - 0.5, (dy + 0.5) % 1.0 - 0.5
            mask[idx] = _shape_mask(shape_id, dx, dy, radii[idx].view(-1, 1, 1))
    fg = colors.mul(255).round().to(torch.uint8).view(-1, 3, 1, 1)
    bg = backgrounds.mul(255).round().to(torch.uint8).view(-1, 3, 1, 1)
    return torch.where(mask.unsqueeze(1), fg, bg)


def index_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """A random stream that depends only on (seed, split, index): example i never depends on N."""
    return np.random.default_rng([seed, {"train": 0, "test": 1}[split], index])


@functools.lru_cache(maxsize=4)
def _render_shapes_dataset(
    num_images: int, image_size: int, split: str, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    params = np.empty((num_images, 10))
    for i in range(num_images):
        rng = index_rng(seed, split, i)
        radius = rng.uniform(0.1, 0.25)
        params[i, 0:2] = rng.uniform(radius, 1 - radius, size=2)
        params[i, 2] = radius
        params[i, 3:6] = rng.uniform(0.55, 1.0, size=3)  # bright shape
        params[i, 6:9] = rng.uniform(0.0, 0.35, size=3)  # on a dark background
    params = torch.from_numpy(params).float()
    labels = torch.arange(num_images) % len(SHAPE_NAMES)
    images = render_shapes(params[:, 0:2], params[:, 2], labels, params[:, 3:6], params[:, 6:9], image_size)
    targets = torch.cat([params[:, 0:2], 2 * params[:, 2:3]], dim=1)
    return images, labels, targets


class ShapesDataset(InMemoryImageDataset):
    """Procedural images: one shape (circle, square, triangle, cross) of random colour, position and
    size on a random dark background.

    label = shape class (index % 4, so classes are balanced); target = (x, y, size): the shape's centre
    and its width, all as fractions of the image side. Example i is a function of (seed, split, i)
    only; the whole set is rendered once, vectorized, and kept in memory.
    """

    def __init__(
        self, num_images: int | None = None, image_size: int = 32, train: bool = True, seed: int = 0
    ) -> None:
        split = "train" if train else "test"
        if num_images is None:
            num_images = 2000 if train else 500
        images, labels, targets = _render_shapes_dataset(num_images, image_size, split, seed)
        super().__init__(
            images, labels, len(SHAPE_NAMES), train, targets=targets, target_names=("x", "y", "size")
        )
