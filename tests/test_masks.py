"""Multiblock mask samplers, their collator and their pictures: behaviour and numbers."""

from __future__ import annotations

import pytest
import torch

from worldjepa.errors import UserError
from worldjepa.masks import (
    MaskCollator,
    MaskGeneratorConfig,
    MultiBlock2D,
    MultiBlock2DConfig,
    MultiBlock3D,
    MultiBlock3DConfig,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def as_bool(indices: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """Index lists [..., K] -> bool [..., num_tokens]."""
    mask = torch.zeros(*indices.shape[:-1], num_tokens, dtype=torch.bool)
    return mask.scatter(-1, indices, True)


def assert_index_list(indices: torch.Tensor, num_tokens: int) -> None:
    assert indices.dtype == torch.int64
    assert indices.shape[-1] > 0
    assert (indices.diff(dim=-1) > 0).all(), "indices must be strictly ascending"
    assert indices.min() >= 0 and indices.max() < num_tokens


def block_shape(indices: torch.Tensor, width: int) -> tuple[int, int]:
    """(h, w) of the bounding box of one target's patch indices; asserts it is a filled rectangle."""
    rows, cols = indices // width, indices % width
    h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
    assert len(indices) == h * w
    return h, w


@pytest.mark.parametrize("grid", [(8, 8), (14, 14)])
def test_2d_output_format(grid):
    masks = MultiBlock2D(grid)(16, gen(0))
    num_patches = grid[0] * grid[1]
    assert masks.context.shape[0] == 16
    assert masks.targets.shape[:2] == (4, 16)
    assert_index_list(masks.context, num_patches)
    assert_index_list(masks.targets, num_patches)


def test_2d_target_blocks_match_configured_scale_and_aspect_ratio():
    H = W = 64  # large grid: rounding to whole patches is small next to the ranges
    sampler = MultiBlock2D((H, W))
    scales, ratios = [], []
    for seed in range(300):
        targets = sampler(1, gen(seed)).targets
        h, w = block_shape(targets[0, 0], W)  # all blocks of a batch share this size: [4, B, h*w]
        slack = (h + w) / 2 + 1  # patches: each side rounded (half a patch), the area floored (one)
        assert 0.15 * H * W - slack <= h * w <= 0.2 * H * W + slack
        assert (h - 0.5) / (w + 0.5) <= 1.5 and (h + 0.5) / (w - 0.5) >= 0.75
        scales.append(h * w / (H * W))
        ratios.append(h / w)
    scales, ratios = torch.tensor(scales), torch.tensor(ratios)
    # Uniform draws: the empirical range and mean match the configured ranges.
    assert scales.min() < 0.155 and scales.max() > 0.195 and abs(scales.mean() - 0.175) < 0.004
    assert ratios.min() < 0.8 and ratios.max() > 1.4 and abs(ratios.mean() - 1.125) < 0.04


def test_2d_terminates_keeps_min_keep_and_never_overlaps_on_every_seed():
    # The official collator loops forever on about half of these seeds.
    sampler = MultiBlock2D((8, 8), MultiBlock2DConfig(min_keep=10))
    for seed in range(1000):
        masks = sampler(4, gen(seed))
        assert masks.context.shape[1] >= 10
        overlap = as_bool(masks.context, 64)[None] & as_bool(masks.targets, 64)
        assert not overlap.any()


def test_2d_relaxation_keeps_min_keep_without_overlap():
    # min_keep so large that context blocks fail often: the fallback and the target shrink must hold it.
    sampler = MultiBlock2D((8, 8), MultiBlock2DConfig(min_keep=40))
    for seed in range(50):
        masks = sampler(8, gen(seed))
        assert masks.context.shape[1] >= 40
        assert masks.targets.shape[2] * 4 <= 64 - 40
        assert not (as_bool(masks.context, 64)[None] & as_bool(masks.targets, 64)).any()


def test_impossible_min_keep_is_refused():
    with pytest.raises(UserError, match="min_keep"):
        MultiBlock2D((4, 4), MultiBlock2DConfig(min_keep=13))
    with pytest.raises(UserError, match="min_keep"):
        MultiBlock3D((2, 4, 4), MultiBlock3DConfig(generators=[{"min_keep": 40}]))


@pytest.mark.parametrize("sampler", [MultiBlock2D((14, 14)), MultiBlock3D((8, 14, 14))], ids=["2d", "3d"])
def test_seeded_reproducible(sampler):
    def flat(masks):
        if isinstance(masks.context, list):
            return [*masks.context, *masks.targets]
        return [masks.context, masks.targets]

    a, b, c = flat(sampler(8, gen(3))), flat(sampler(8, gen(3))), flat(sampler(8, gen(4)))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(x.shape != y.shape or not torch.equal(x, y) for x, y in zip(a, c, strict=True))


def test_3d_context_is_complement_of_target_tubes():
    T, H, W = 8, 14, 14
    sampler = MultiBlock3D((T, H, W))
    for seed in range(20):
        masks = sampler(1, gen(seed))  # one clip: no cut to the batch's shortest
        assert len(masks.context) == len(masks.targets) == 2
        for context, target in zip(masks.context, masks.targets, strict=True):
            context, target = as_bool(context[0], T * H * W), as_bool(target[0], T * H * W)
            assert torch.equal(context, ~target)
            per_frame = target.view(T, H * W)
            assert (per_frame == per_frame[0]).all(), "blocks span all frames"
            assert context.any()


def test_3d_batch_format_and_block_counts():
    T, H, W = 8, 14, 14
    masks = MultiBlock3D((T, H, W))(16, gen(0))
    for context, target in zip(masks.context, masks.targets, strict=True):
        assert context.shape[0] == target.shape[0] == 16
        assert_index_list(context, T * H * W)
        assert_index_list(target, T * H * W)
        assert not (as_bool(context, T * H * W) & as_bool(target, T * H * W)).any()


def test_3d_block_shape_matches_spatial_scale_and_aspect_ratio():
    T, H, W = 2, 32, 32
    one_block = MultiBlock3DConfig(generators=[MaskGeneratorConfig(num_blocks=1, spatial_scale=(0.15, 0.15))])
    sampler = MultiBlock3D((T, H, W), one_block)
    for seed in range(50):
        target = sampler(1, gen(seed)).targets[0][0]
        h, w = block_shape(target[: len(target) // T], W)  # the first frame's block
        assert abs(h * w - 0.15 * H * W) <= (h + w) / 2 + 1
        assert (h - 0.5) / (w + 0.5) <= 1.5 and (h + 0.5) / (w - 0.5) >= 0.75


def test_3d_context_never_empty_and_max_keep():
    # 8 blocks as large as the plane: shrunk to 5x6 (or 6x5) so one block leaves min_keep=12 tokens, and
    # nearly every clip fails all retries and falls back to its first blocks that share a position.
    T, H, W = 2, 6, 6
    config = MultiBlock3DConfig(
        generators=[
            MaskGeneratorConfig(num_blocks=8, spatial_scale=(1.0, 1.0), aspect_ratio=(1.0, 1.0), min_keep=12),
            MaskGeneratorConfig(num_blocks=2, spatial_scale=(0.2, 0.2), max_keep=30),
        ]
    )
    sampler = MultiBlock3D((T, H, W), config)
    for seed in range(20):
        masks = sampler(4, gen(seed))
        assert masks.context[0].shape == (4, 12) and masks.targets[0].shape == (4, 60)
        assert not (as_bool(masks.context[0], T * H * W) & as_bool(masks.targets[0], T * H * W)).any()
        assert masks.context[1].shape == (4, 30)


def test_collator_2d_and_3d():
    samples = [{"image": torch.randn(3, 32, 32), "label": i, "seed": 100 + i} for i in range(4)]
    batch = MaskCollator(MultiBlock2D((4, 4), MultiBlock2DConfig(min_keep=2)))(samples)
    assert batch["image"].shape == (4, 3, 32, 32) and batch["label"].tolist() == [0, 1, 2, 3]
    assert batch["context"].shape[0] == 4 and batch["targets"].shape[:2] == (4, 4)
    again = MaskCollator(MultiBlock2D((4, 4), MultiBlock2DConfig(min_keep=2)))(samples)
    assert torch.equal(batch["context"], again["context"]), "masks are a pure function of the batch"

    clips = [{"video": torch.randn(3, 4, 16, 16), "seed": 7 + i} for i in range(3)]
    batch = MaskCollator(MultiBlock3D((2, 4, 4)))(clips)
    assert batch["video"].shape == (3, 3, 4, 16, 16)
    assert [c.shape[0] for c in batch["context"]] == [3, 3]
    assert [t.shape[0] for t in batch["targets"]] == [3, 3]


class SeededImages(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int) -> dict:
        return {"image": torch.full((3, 8, 8), float(i)), "seed": 1000 + i}


def test_collator_masks_do_not_depend_on_workers():
    def all_masks(num_workers: int) -> list[torch.Tensor]:
        collate = MaskCollator(MultiBlock2D((8, 8)))
        loader = torch.utils.data.DataLoader(
            SeededImages(), batch_size=4, num_workers=num_workers, collate_fn=collate
        )
        return [m for batch in loader for m in (batch["context"], batch["targets"])]

    serial, parallel = all_masks(0), all_masks(2)
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel, strict=True))
    assert not torch.equal(serial[0], serial[2]), "batches with different seeds get different masks"


def test_save_mask_grid_writes_png(tmp_path):
    from worldjepa.viz.masks import save_mask_grid

    masks = MultiBlock2D((4, 4), MultiBlock2DConfig(min_keep=2))(3, gen(0))
    path = save_mask_grid(tmp_path / "img.png", torch.rand(3, 3, 16, 16), *masks, grid=(4, 4), num_samples=2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    masks = MultiBlock3D((2, 4, 4))(2, gen(0))
    path = save_mask_grid(
        tmp_path / "vid.png", torch.rand(2, 3, 4, 16, 16), *masks, grid=(2, 4, 4), num_samples=1
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
