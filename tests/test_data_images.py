"""Image transforms and datasets: shapes, determinism, labels that match the pictures, clear errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from worldjepa.data.images import SHAPE_NAMES, DigitsDataset, ImageFolderDataset, ShapesDataset
from worldjepa.data.transforms import ImageTransform, random_resized_crop_box
from worldjepa.errors import UserError


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_random_resized_crop_box_stays_inside_and_covers_the_scale():
    g = gen(0)
    for _ in range(200):
        box = random_resized_crop_box(40, 60, g)
        assert box.top >= 0 and box.top + box.height <= 40
        assert box.left >= 0 and box.left + box.width <= 60
        assert 0.25 <= box.height * box.width / (40 * 60) <= 1.0


def test_transform_is_driven_only_by_the_generator_and_shares_the_crop_across_frames():
    transform = ImageTransform(16, hflip=True)
    image = torch.randint(0, 256, (3, 40, 30), dtype=torch.uint8)
    assert transform(image).shape == (3, 16, 16)
    assert torch.equal(transform(image, gen(1)), transform(image, gen(1)))
    assert not torch.equal(transform(image, gen(1)), transform(image, gen(2)))
    video = image.expand(5, -1, -1, -1)  # [T, 3, H, W], identical frames
    out = transform(video, gen(3))
    assert out.shape == (5, 3, 16, 16)
    assert all(torch.equal(out[0], frame) for frame in out)


def write_png(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((20, 24, 3), value, dtype=np.uint8)).save(path)


def test_image_folder_dataset_reads_classes_in_sorted_order(tmp_path):
    for name, value in (("cat", 10), ("dog", 200)):
        for i in range(3):
            write_png(tmp_path / name / f"{i}.png", value)
    data = ImageFolderDataset(tmp_path, image_size=16)
    assert (len(data), data.num_classes, data.class_names) == (6, 2, ["cat", "dog"])
    item = data[4]
    assert item["image"].shape == (3, 16, 16) and item["image"].dtype == torch.float32
    assert item["label"] == 1
    assert torch.equal(data.sample(0, gen(5))["image"], data.sample(0, gen(5))["image"])


def test_image_folder_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        ImageFolderDataset(tmp_path / "missing", image_size=16)
    with pytest.raises(UserError, match="no images found in .*class subfolders"):
        ImageFolderDataset(tmp_path, image_size=16)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png at all")
    data = ImageFolderDataset(tmp_path, image_size=16)
    with pytest.raises(UserError, match="could not read image .*broken.png"):
        data[0]


def test_digits_split_is_fixed_balanced_and_labels_match_the_pictures():
    train, test = DigitsDataset(image_size=16), DigitsDataset(image_size=16, train=False)
    assert len(train) + len(test) == 1797 and train.num_classes == 10
    assert train[0]["image"].shape == (3, 16, 16)
    train_counts, test_counts = torch.bincount(train.labels), torch.bincount(test.labels)
    assert ((train_counts - 4 * test_counts).abs() <= 5).all()  # stratified 80/20 in every class
    assert torch.equal(DigitsDataset(image_size=16, train=False).images, test.images)
    # A nearest-centroid classifier on raw pixels only works if labels belong to their images.
    flat_train, flat_test = train.images.flatten(1).float(), test.images.flatten(1).float()
    centroids = torch.stack([flat_train[train.labels == c].mean(0) for c in range(10)])
    predicted = torch.cdist(flat_test, centroids).argmin(1)
    assert (predicted == test.labels).float().mean() > 0.8


def classify_shape(image: torch.Tensor) -> int:
    """Recognize the shape in a uint8 [3, S, S] picture from its fill ratio and vertical balance."""
    mask = (image.int() - image[:, :1, :1].int()).abs().sum(0) > 30
    rows, cols = mask.any(1).nonzero().squeeze(1), mask.any(0).nonzero().squeeze(1)
    box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].float()
    fill = box.mean().item()
    half = box.shape[0] // 2
    top_heavy = box[:half].sum() / box[-half:].sum()
    if fill > 0.9:
        return SHAPE_NAMES.index("square")
    if fill > 0.7:
        return SHAPE_NAMES.index("circle")
    return SHAPE_NAMES.index("triangle") if top_heavy < 0.75 else SHAPE_NAMES.index("cross")


def test_shapes_are_deterministic_balanced_and_labelled_by_shape():
    data = ShapesDataset(num_images=40, image_size=64)
    assert torch.equal(torch.bincount(data.labels), torch.full((4,), 10))
    assert data.target_names == ("x", "y", "size") and data[0]["target"].shape == (3,)
    longer = ShapesDataset(num_images=60, image_size=64)
    assert torch.equal(longer.images[:40], data.images)  # example i depends on i, not on N
    assert not torch.equal(ShapesDataset(num_images=40, image_size=64, train=False).images, data.images)
    recognized = torch.tensor([classify_shape(image) for image in data.images])
    assert (recognized == data.labels).float().mean() >= 0.95


def test_shape_targets_match_the_drawn_position_and_size():
    data = ShapesDataset(num_images=20, image_size=64)
    for image, label, (x, y, size) in zip(data.images, data.labels, data.targets, strict=True):
        mask = (image.int() - image[:, :1, :1].int()).abs().sum(0) > 30
        rows, cols = mask.any(1).nonzero().squeeze(1), mask.any(0).nonzero().squeeze(1)
        assert abs((cols[0] + cols[-1] + 1) / 2 / 64 - x) < 0.03
        assert abs((rows[0] + rows[-1] + 1) / 2 / 64 - y) < 0.03
        width = (cols[-1] - cols[0] + 1) / 64
        expected = size * (0.85 if SHAPE_NAMES[label] == "square" else 1.0)
        assert abs(width - expected) < 0.05


def test_sample_augments_only_from_its_generator_and_getitem_is_deterministic():
    data = ShapesDataset(num_images=8, image_size=32)
    assert torch.equal(data[3]["image"], data[3]["image"])
    assert torch.equal(data.sample(3, gen(0))["image"], data.sample(3, gen(0))["image"])
    assert not torch.equal(data.sample(3, gen(0))["image"], data.sample(3, gen(1))["image"])
    test = ShapesDataset(num_images=8, image_size=32, train=False)
    assert torch.equal(test.sample(3, gen(0))["image"], test[3]["image"])
