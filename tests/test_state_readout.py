"""The state readout (goal state from a goal image) and the scene randomisation it is fitted with."""

import math
from dataclasses import replace

import pytest
import torch

from worldjepa.data.scene_augment import _reshade, scene_augment
from worldjepa.data.trajectories import TrajectoryDataset
from worldjepa.errors import UserError
from worldjepa.methods.state_readout_fit import (
    NEAR_FRAMES,
    StateReadoutFitConfig,
    episode_spans,
    fit_state_readout,
    same_episode_partners,
    wrap_angle,
)
from worldjepa.nn.state_readout import StateReadout
from worldjepa.planning.ac_world_model import ACWorldModel
from worldjepa.stages.collect import collect
from worldjepa.stages.posttrain import (
    WORLD_MODEL_DIR,
    run_posttrain,
    run_readout_refit,
    save_ablation_encoder,
)

SIZE = 32


def square_frames(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames [M, 32, 32, 3] of a grey table with a white 6 px square; state: its centre (x, y) in px."""
    generator = torch.Generator().manual_seed(seed)
    corners = torch.randint(0, SIZE - 6, (count, 2), generator=generator)
    frames = torch.full((count, SIZE, SIZE, 3), 90, dtype=torch.uint8)
    frames[..., 2] = 120
    rows = torch.arange(SIZE).view(1, SIZE, 1)
    cols = torch.arange(SIZE).view(1, 1, SIZE)
    inside = (rows >= corners[:, 1, None, None]) & (rows < corners[:, 1, None, None] + 6)
    inside = inside & (cols >= corners[:, 0, None, None]) & (cols < corners[:, 0, None, None] + 6)
    frames[inside] = torch.tensor([240, 240, 240], dtype=torch.uint8)
    return frames, corners.float() + 2.5


def to_input(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W, 3] or float [B, 3, H, W] in [0, 1] -> centred float [B, 3, H, W]."""
    if pixels.dtype == torch.uint8:
        pixels = pixels.permute(0, 3, 1, 2).float() / 255
    return pixels - 0.5


def test_scene_augment_is_seeded_in_range_and_differs_per_image():
    frames = torch.rand(1, 3, SIZE, SIZE).expand(6, -1, -1, -1).contiguous()
    first = scene_augment(frames, torch.Generator().manual_seed(3))
    again = scene_augment(frames, torch.Generator().manual_seed(3))
    other = scene_augment(frames, torch.Generator().manual_seed(4))
    assert first.shape == frames.shape and first.min() >= 0 and first.max() <= 1
    torch.testing.assert_close(first, again)
    assert not torch.allclose(first, other)
    assert all((first[i] - first[0]).abs().mean() > 0.01 for i in range(1, 6))  # a look per image
    assert scene_augment(frames[:0], torch.Generator()).shape == (0, 3, SIZE, SIZE)


def test_scene_augment_gives_each_group_one_look():
    frames = torch.rand(1, 3, SIZE, SIZE).expand(6, -1, -1, -1).contiguous()
    looks = scene_augment(frames, torch.Generator().manual_seed(0), group=2)
    torch.testing.assert_close(looks[0::2], looks[1::2])  # the pairs (0, 1), (2, 3), (4, 5)
    assert (looks[0] - looks[2]).abs().mean() > 0.01
    with pytest.raises(ValueError, match="groups of 4"):
        scene_augment(frames, torch.Generator(), group=4)


def test_reshade_tone_curve_goes_through_its_levels_and_swaps_bright_and_dark():
    levels = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0]).view(1, 1, 1, 1, 5)  # at inputs 0, 1/4, 1/2, 3/4, 1
    x = torch.tensor([0.0, 0.25, 0.375, 0.5, 0.75, 1.0]).view(1, 1, 1, 6).expand(1, 3, 1, 6)
    torch.testing.assert_close(_reshade(x, levels)[0, 0, 0], torch.tensor([0.0, 1.0, 0.5, 0.0, 1.0, 0.0]))
    # a darker face (0.25) turns brighter than a lighter one (0.5), as under a light from another side
    frames = torch.rand(1, 3, SIZE, SIZE).expand(8, -1, -1, -1).contiguous()
    plain = scene_augment(frames, torch.Generator().manual_seed(5))
    torch.testing.assert_close(scene_augment(frames, torch.Generator().manual_seed(5), reshade=0.0), plain)
    reshaded = scene_augment(frames, torch.Generator().manual_seed(5), reshade=1.0)
    assert reshaded.min() >= 0 and reshaded.max() <= 1
    assert all((reshaded[i] - plain[i]).abs().mean() > 0.02 for i in range(8))  # every look reshaded
    with pytest.raises(UserError, match="reshade"):
        StateReadoutFitConfig(reshade=1.5)


def fitted(scene_share: float, pair: bool = False, episodes: torch.Tensor | None = None) -> StateReadout:
    frames, states = square_frames(1200, seed=0)
    torch.manual_seed(0)  # the initial weights: the same fit whatever ran before
    readout = StateReadout(2, SIZE, width=8, pair=pair)
    cfg = StateReadoutFitConfig(
        steps=500, batch_size=64, lr=3e-3, width=8, validation=0.0, scene_augment=scene_share, pair=pair
    )
    episodes = torch.arange(1200) if episodes is None else episodes
    fit_state_readout(readout, frames, states, episodes, to_input, cfg, "cpu", progress_bar=False)
    return readout


@pytest.mark.slow
def test_scene_augmented_readout_reads_a_recoloured_dimmed_scene():
    """Fitted on one look, the plain readout misreads the same scene recoloured and dimmed; fitted with
    scene randomisation it still finds the square (error in px of a 32 px frame)."""
    frames, states = square_frames(200, seed=1)
    test = frames.permute(0, 3, 1, 2).float() / 255
    changed = (0.6 * test[:, [2, 0, 1]]).clamp(0, 1)  # channels permuted, 40 % darker
    errors = {}
    for share in (0.0, 0.7):
        readout = fitted(share)
        with torch.no_grad():
            errors[share] = [
                (readout(to_input(x)) - states).norm(dim=1).mean().item() for x in (test, changed)
            ]
    plain, augmented = errors[0.0], errors[0.7]
    assert plain[0] < 1.5 and augmented[0] < 2.0  # both read the scene they were fitted on
    assert plain[1] > 3 * augmented[1] and augmented[1] < 2.5, errors


@pytest.mark.slow
def test_pair_readout_reads_the_change_between_two_frames_of_a_new_scene():
    """Fitted on frame pairs of one look (episodes of 20 frames), a pair readout reads how far the square
    moved between two frames of the recoloured, dimmed scene (px of a 32 px frame)."""
    readout = fitted(0.7, pair=True, episodes=torch.arange(1200) // 20)
    frames, states = square_frames(200, seed=1)
    changed = (0.6 * (frames.permute(0, 3, 1, 2).float() / 255)[:, [2, 0, 1]]).clamp(0, 1)
    with torch.no_grad():
        change = readout(to_input(changed[100:]), to_input(changed[:100]))
    error = (change - (states[100:] - states[:100])).norm(dim=1).mean().item()
    assert error < 2.5, error
    with pytest.raises(UserError, match="pass both"):
        readout(to_input(changed[:1]))


def test_pair_readout_needs_episodes_in_one_piece():
    frames, states = square_frames(8, seed=0)
    cfg = StateReadoutFitConfig(steps=1, batch_size=4, width=8, validation=0.0, pair=True)
    with pytest.raises(UserError, match="next to each other"):
        fit_state_readout(
            StateReadout(2, SIZE, 8, pair=True),
            frames,
            states,
            torch.tensor([0, 1] * 4),
            to_input,
            cfg,
            "cpu",
        )


def test_scene_augment_share_is_checked():
    with pytest.raises(UserError, match="scene_augment"):
        StateReadoutFitConfig(scene_augment=1.5)


def dial_frames(episodes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames [20 * episodes, 32, 32, 3] of a clock hand (a line from the centre, 11 px long, to a dot)
    at angle a; the angle walks by up to a full turn per episode and the state is the unwrapped angle (an
    unlimited joint: the picture does not show the turns)."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.rand(episodes, 1, generator=generator) * 2 * math.pi
    steps = torch.randn(episodes, 20, generator=generator) * 0.8
    angles = (start + steps.cumsum(1)).flatten()
    rows = torch.arange(SIZE).view(1, 1, SIZE, 1).float() - 15.5
    cols = torch.arange(SIZE).view(1, 1, 1, SIZE).float() - 15.5
    along = torch.linspace(0, 11, 12).view(1, 12, 1, 1)
    x, y = along * angles.cos().view(-1, 1, 1, 1), along * angles.sin().view(-1, 1, 1, 1)
    inside = ((cols - x).pow(2) + (rows - y).pow(2) <= 2.5).any(dim=1)
    frames = torch.full((len(angles), SIZE, SIZE, 3), 80, dtype=torch.uint8)
    frames[inside] = 240
    return frames, angles[:, None]


@pytest.mark.slow
def test_periodic_pair_readout_reads_an_unlimited_joint_the_shortest_way_round():
    """With the angle marked periodic, a pair readout fitted on clock-hand pictures whose states count
    whole turns reads the change between two new pictures the shortest way round (rad): any two pictures,
    not only two of one episode."""
    frames, states = dial_frames(80, seed=0)
    readout = StateReadout(1, SIZE, width=8, pair=True)
    cfg = StateReadoutFitConfig(
        steps=600, batch_size=64, lr=3e-3, width=8, validation=0.0, pair=True, periodic=[0]
    )
    fit_state_readout(
        readout, frames, states, torch.arange(1600) // 20, to_input, cfg, "cpu", progress_bar=False
    )
    test, angles = dial_frames(10, seed=1)
    with torch.no_grad():
        change = readout(to_input(test[100:]), to_input(test[:100]))[:, 0]
    wrapped_error = wrap_angle(change - wrap_angle(angles[100:, 0] - angles[:100, 0])).abs()
    assert wrapped_error.mean() < 0.35 and change.abs().max() < math.pi + 0.5, (wrapped_error.mean(), change)


def test_periodic_state_needs_a_pair_readout():
    with pytest.raises(UserError, match="pair=true"):
        StateReadoutFitConfig(periodic=[0])
    with pytest.raises(UserError, match="outside"):
        fit_state_readout(
            StateReadout(2, SIZE, 8, pair=True),
            *square_frames(8, seed=0),
            torch.zeros(8, dtype=torch.long),
            to_input,
            StateReadoutFitConfig(steps=1, batch_size=4, width=8, validation=0.0, pair=True, periodic=[2]),
            "cpu",
        )


def test_near_partners_stay_in_their_episode_and_within_reach():
    episodes = torch.tensor([0] * 5 + [1] * 30 + [2] * 8)
    indices = torch.arange(len(episodes)).repeat(20)
    generator = torch.Generator().manual_seed(0)
    spans = episode_spans(episodes)
    near = same_episode_partners(indices, spans, generator, within=NEAR_FRAMES)
    anywhere = same_episode_partners(indices, spans, generator)
    assert (episodes[near] == episodes[indices]).all() and (episodes[anywhere] == episodes[indices]).all()
    assert (near - indices).abs().max() == NEAR_FRAMES  # the long episode reaches the window's edge
    assert (anywhere - indices).abs().max() > NEAR_FRAMES
    with pytest.raises(UserError, match="near_pairs"):
        StateReadoutFitConfig(near_pairs=1.5)


def test_readout_weights_leave_out_a_value_the_pictures_cannot_show():
    """A third state value that no picture shows (noise, like a velocity in one frame) costs the plain fit
    precision on the two it can read; weighted 0 it is not fitted and the square is read closer."""
    frames, states = square_frames(1200, seed=0)
    noisy = torch.cat([states, 10 * torch.randn(1200, 1, generator=torch.Generator().manual_seed(1))], dim=1)
    test_frames, test_states = square_frames(200, seed=1)
    errors = {}
    for weights in (None, [1.0, 1.0, 0.0]):
        torch.manual_seed(0)  # the same start for both (over seeds 0-4 the weighted fit is 0.55-0.85x)
        readout = StateReadout(3, SIZE, width=8)
        cfg = StateReadoutFitConfig(
            steps=300, batch_size=64, lr=3e-3, width=8, validation=0.0, weights=weights
        )
        fit_state_readout(
            readout, frames, noisy, torch.arange(1200), to_input, cfg, "cpu", progress_bar=False
        )
        with torch.no_grad():
            errors[str(weights)] = (
                (readout(to_input(test_frames))[:, :2] - test_states).norm(dim=1).mean().item()
            )
    plain, weighted = errors.values()
    assert weighted < 0.9 * plain, errors
    with pytest.raises(UserError, match="3 values >= 0"):
        bad = StateReadoutFitConfig(steps=1, batch_size=4, width=8, weights=[1.0, 1.0])
        fit_state_readout(StateReadout(3, SIZE, 8), frames, noisy, torch.arange(1200), to_input, bad, "cpu")


def test_antisymmetric_pair_readout_reads_each_change_as_minus_its_reverse():
    """Read both ways, the change from A to B is exactly minus the change from B to A, and zero between two
    copies of one picture, whatever the weights and the data's mean change; the flag survives a save."""
    torch.manual_seed(0)
    norm = {"state_mean": [0.5, -2.0], "state_std": [3.0, 0.5]}
    readout = StateReadout(2, SIZE, 8, norm, pair=True, antisymmetric=True).eval()
    with torch.no_grad():
        readout.net[-1].weight.mul_(100.0)  # reads of a useful size (a fresh head reads ~1e-4)
    frames = to_input(square_frames(6, seed=0)[0])
    with torch.no_grad():
        forward, backward = readout(frames[:3], frames[3:]), readout(frames[3:], frames[:3])
        same = readout(frames[:3], frames[:3])
    torch.testing.assert_close(forward, -backward)
    assert same.abs().max() < 1e-6 and forward.abs().max() > 1e-2, (same, forward)
    rebuilt = StateReadout(**readout.config())
    rebuilt.load_state_dict(readout.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(frames[:3], frames[3:]), forward)
    plain = StateReadout(2, SIZE, 8, norm, pair=True).eval()
    plain.load_state_dict(readout.state_dict())
    with torch.no_grad():
        assert plain(frames[:3], frames[:3]).abs().max() > 1e-3  # one way, a picture against itself is off
    with pytest.raises(UserError, match="pair=true"):
        StateReadout(2, SIZE, 8, antisymmetric=True)
    with pytest.raises(UserError, match="pair=true"):
        StateReadoutFitConfig(antisymmetric=True)


def test_standardized_readout_reads_a_dimmer_light_as_the_same_picture():
    """A light made dimmer (all channels scaled and shifted alike, both pictures of a pair alike) leaves
    every read unchanged with either `standardize` mode, single or pair, antisymmetric too; a greyer light
    (each channel its own scale and shift) only with `channels`; without standardising the reads move;
    the mode survives a save, and a readout saved with the old true / false flag loads as channels / none."""
    torch.manual_seed(0)
    frames = to_input(square_frames(6, seed=0)[0])
    dimmer = frames * 0.5 - 0.2
    greyer = frames * torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1) + torch.tensor([-0.3, 0.1, 0.2]).view(
        1, 3, 1, 1
    )
    for pair, antisymmetric in [(False, False), (True, False), (True, True)]:
        read = (lambda m, x: m(x[:3], x[3:])) if pair else (lambda m, x: m(x))
        readouts = {}
        for mode in ("none", "channels", "brightness"):
            readouts[mode] = StateReadout(
                2, SIZE, 8, pair=pair, antisymmetric=antisymmetric, standardize=mode
            )
            readouts[mode].eval()
            if mode == "none":
                with torch.no_grad():
                    readouts[mode].net[-1].weight.mul_(100.0)  # reads of a useful size
            else:
                readouts[mode].load_state_dict(readouts["none"].state_dict())
        with torch.no_grad():
            moved = {
                (mode, light): float((read(m, pictures) - read(m, frames)).abs().max())
                for mode, m in readouts.items()
                for light, pictures in (("dimmer", dimmer), ("greyer", greyer))
            }
            for m in readouts.values():
                rebuilt = StateReadout(**m.config())
                rebuilt.load_state_dict(m.state_dict())
                torch.testing.assert_close(read(rebuilt.eval(), frames), read(m, frames))
        assert moved["channels", "dimmer"] < 1e-4 and moved["channels", "greyer"] < 1e-4
        assert moved["brightness", "dimmer"] < 1e-4 and moved["brightness", "greyer"] > 1e-3
        assert moved["none", "dimmer"] > 1e-3 and moved["none", "greyer"] > 1e-3
    assert StateReadoutFitConfig(standardize="brightness").build(2, SIZE).standardize == "brightness"
    assert StateReadout(2, SIZE, 8, standardize=True).standardize == "channels"
    assert StateReadout(2, SIZE, 8, standardize=False).standardize == "none"
    with pytest.raises(UserError, match="brightness"):
        StateReadout(2, SIZE, 8, standardize="colour")


def test_readout_refit_replaces_only_the_readout_and_adds_the_new_seeds(tiny_world_model_cfg, tmp_path):
    """`worldjepa readout`: a saved world model's readout fitted anew on other recordings (here the same
    scene with randomised lights); encoder, predictor and proprio head stay as they were, and the new
    recordings' seeds join the model's training seeds, which evaluation refuses to run on."""
    record = dict(workers=0, image_size=32, max_steps=10, progress=False)
    collect("worldjepa/ArmReach-v0", 3, tmp_path / "data", seed=0, **record)
    collect("worldjepa/ArmReach-v0", 3, tmp_path / "lights", seed=40, variation="random_lights", **record)
    cfg = tiny_world_model_cfg.world_model  # with a head of 2 moves per model step, kept by the refit
    cfg = replace(cfg, frame_skip=2, proprio_fit=replace(cfg.proprio_fit, per_move=True))
    encoder = save_ablation_encoder(
        "random", tiny_world_model_cfg.stage1(tmp_path / "data"), tmp_path / "enc"
    )
    run_posttrain(cfg, encoder, tmp_path / "data", tmp_path / "wm")
    pair = replace(cfg, state_readout=replace(cfg.state_readout, pair=True))
    run_readout_refit(pair, tmp_path / "wm" / WORLD_MODEL_DIR, tmp_path / "lights", tmp_path / "new")
    before = ACWorldModel.load(tmp_path / "wm" / WORLD_MODEL_DIR)
    after = ACWorldModel.load(tmp_path / "new" / WORLD_MODEL_DIR)
    for kept in ("predictor", "proprio_head"):
        old, new = getattr(before, kept).state_dict(), getattr(after, kept).state_dict()
        assert all(torch.equal(old[key], new[key]) for key in old)
    assert torch.equal(
        before.frames.encoder.patch_embed.proj.weight, after.frames.encoder.patch_embed.proj.weight
    )
    assert after.state_readout.pair and not before.state_readout.pair
    assert before.proprio_head.moves == after.proprio_head.moves == 2
    new_seeds = TrajectoryDataset(tmp_path / "lights", clip_length=1).episode_seeds
    assert after.trained_on["seeds"] == sorted({*before.trained_on["seeds"], *new_seeds})
    assert len(after.trained_on["seeds"]) == 6
    assert (tmp_path / "new" / "state_readout.json").is_file()
    with pytest.raises(UserError, match="already exists"):
        run_readout_refit(pair, tmp_path / "wm" / WORLD_MODEL_DIR, tmp_path / "lights", tmp_path / "new")
    collect("worldjepa/ArmPush-v0", 1, tmp_path / "push", seed=50, **record)
    with pytest.raises(
        UserError, match="not recorded like the world model's data .env_id: model 'worldjepa/ArmReach-v0'"
    ):
        run_readout_refit(pair, tmp_path / "wm" / WORLD_MODEL_DIR, tmp_path / "push", tmp_path / "other")
