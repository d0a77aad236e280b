"""The object locator: an object's place read below a pixel, from keypoints and the robot's proprio."""

import pytest
import torch

from worldjepa.errors import UserError
from worldjepa.methods.object_locator_fit import ObjectLocatorFitConfig, fit_object_locator
from worldjepa.nn.object_locator import ObjectLocator

SIZE, SIDE = 32, 5.0


def coverage(corners: torch.Tensor, side: float) -> torch.Tensor:
    """Corners [M, 2] (x, y, px) -> how much of each pixel [M, SIZE, SIZE] a square of `side` px covers, as
    an anti-aliased camera sees it: an edge half across a pixel makes it half the square's colour."""
    edges = torch.arange(SIZE, dtype=torch.float32)

    def overlap(start: torch.Tensor) -> torch.Tensor:  # [M] -> [M, SIZE]
        low, high = torch.maximum(edges, start[:, None]), torch.minimum(edges + 1, start[:, None] + side)
        return (high - low).clamp(0, 1)

    return overlap(corners[:, 1])[:, :, None] * overlap(corners[:, 0])[:, None, :]


def block_frames(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 frames [M, 32, 32, 3]: a grey table, a red block at any sub-pixel place and, in front of it, a
    blue 'hand' beside it whose corner is the proprio [M, 2]; values: the block's centre (x, y) in px."""
    generator = torch.Generator().manual_seed(seed)
    block = torch.rand(count, 2, generator=generator) * (SIZE - SIDE)
    side = torch.where(
        torch.rand(count, generator=generator) < 0.5, -1.0, 1.0
    )  # left or right, never over it
    offset = torch.rand(count, 2, generator=generator) * torch.tensor([4.0, 16.0]) + torch.tensor([6.0, -8.0])
    hand = block + offset * torch.stack([side, torch.ones(count)], dim=1)
    frames = torch.tensor([110.0, 110.0, 120.0]).expand(count, SIZE, SIZE, 3)
    for corners, side, colour in ((block, SIDE, [220.0, 30.0, 30.0]), (hand, 4.0, [60.0, 70.0, 200.0])):
        cover = coverage(corners, side)[..., None]
        frames = frames * (1 - cover) + torch.tensor(colour) * cover
    return frames.round().to(torch.uint8), hand, block + SIDE / 2


def to_input(pixels: torch.Tensor) -> torch.Tensor:
    return pixels - 0.5


def test_locator_reads_an_object_below_a_pixel():
    torch.manual_seed(0)
    frames, proprio, values = block_frames(1500, seed=0)
    episodes = torch.arange(1500) // 50  # 30 episodes, 3 held out
    cfg = ObjectLocatorFitConfig(steps=300, batch_size=64, head_steps=1500, hidden_dim=64)
    locator = cfg.build(2, 2)
    errors = fit_object_locator(locator, frames, proprio, values, episodes, to_input, cfg, "cpu", False)
    # a reader that snaps to whole pixels is off by 0.25 px per axis on average: this one reads the edges
    assert max(errors["val_mean_abs_error"]) < 0.15
    unseen, hand, truth = block_frames(200, seed=1)
    pictures = to_input(unseen.permute(0, 3, 1, 2).float() / 255)
    with torch.no_grad():
        read = locator(pictures, hand)
    assert (read - truth).abs().mean() < 0.15
    # the fitted locator is its config and its weights
    again = ObjectLocator(**locator.config())
    again.load_state_dict(locator.state_dict())
    torch.testing.assert_close(again(pictures, hand), read)


def test_locator_names_wrong_inputs():
    locator = ObjectLocator(2, 7)
    with pytest.raises(UserError, match="7-D proprio"):
        locator(torch.zeros(3, 3, SIZE, SIZE), torch.zeros(3, 6))
    with pytest.raises(UserError, match=r"frames \[B, 3, H, W\]"):
        locator(torch.zeros(3, SIZE, SIZE, 3), torch.zeros(3, 7))
    with pytest.raises(UserError, match="normalization"):
        locator.set_normalization({"out_mean": [0.0, 0.0], "out_std": [1.0, 1.0]})
    frames, proprio, values = block_frames(40, seed=0)
    values[3, 0] = float("nan")

    def fit(locator: ObjectLocator) -> None:
        config = ObjectLocatorFitConfig(steps=1, head_steps=1)
        fit_object_locator(
            locator, frames, proprio, values, torch.arange(40) // 10, to_input, config, "cpu", False
        )

    with pytest.raises(UserError, match="NaN"):
        fit(ObjectLocator(2, 2))
    with pytest.raises(UserError, match="2 values with 7-D proprio"):
        fit(ObjectLocator(2, 7))
    with pytest.raises(UserError, match="head_steps"):
        ObjectLocatorFitConfig(head_steps=0)
