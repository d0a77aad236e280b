"""The learned proprio head: normalised inputs, its fit on every transition, and what it must learn."""

from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from worldjepa.data.embedding_cache import EmbeddingClips
from worldjepa.errors import UserError
from worldjepa.methods.proprio_fit import ProprioFitConfig, cached_transitions, fit_proprio_head
from worldjepa.nn.proprio_head import ProprioHead, build_proprio_head
from worldjepa.presets import WorldModelConfig
from worldjepa.stages.posttrain import proprio_head

WALL = 5.0


def walled_moves(count: int, scale: float = 1.0, seed: int = 0):
    """A point on a line [2, 8] with a wall at 5 that only stops it from the left: next = x + a, except
    that a move from x < 5 ends at 5 at most. Returns states, actions, next states (times `scale`)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(count, 1, generator=g) * 6 + 2
    a = torch.rand(count, 1, generator=g) * 2 - 1
    nxt = torch.where(x < WALL, torch.minimum(x + a, torch.full_like(x, WALL)), x + a)
    return x * scale, a * scale, nxt * scale


FIT = ProprioFitConfig(steps=1500, batch_size=256, lr=3e-3, hidden_dim=128, hidden_layers=3, validation=500)


def test_fit_learns_that_a_wall_stops_the_agent():
    head = ProprioHead(1, 1, FIT.hidden_dim, FIT.hidden_layers)
    errors = fit_proprio_head(head, *walled_moves(8000), FIT, device="cpu", progress_bar=False)
    assert errors["val_mean_abs_error"] < 0.05
    pushes = head(torch.tensor([[4.5], [4.7], [7.0]]), torch.ones(3, 1))  # into the wall, past it
    torch.testing.assert_close(pushes, torch.tensor([[5.0], [5.0], [8.0]]), atol=0.15, rtol=0)


def test_a_head_of_several_moves_learns_one_and_applies_it_per_action():
    """Frame skip 3 with `moves=3`: the MLP is fitted on single moves and a step applies it to each of the
    step's three actions in turn: a push into the wall stops there, whatever the step's other pushes do."""
    head = ProprioHead(1, 3, FIT.hidden_dim, FIT.hidden_layers, moves=3)
    errors = fit_proprio_head(head, *walled_moves(8000), FIT, device="cpu", progress_bar=False)
    assert errors["val_mean_abs_error"] < 0.05  # of one move
    starts = torch.tensor([[3.5], [4.2], [5.5], [2.5]])
    pushes = torch.tensor([[1.0, 1.0, -0.6], [1.0, -0.5, 0.5], [0.5, 0.5, 0.5], [-0.4, 0.9, 0.9]])
    truth = torch.tensor([[4.4], [5.0], [7.0], [3.9]])  # stopped at 5 on the way: in order, not summed
    torch.testing.assert_close(head(starts, pushes), truth, atol=0.2, rtol=0)
    assert build_proprio_head(head.config()).moves == 3  # the config keeps it
    with pytest.raises(UserError, match="1 action values per transition \\(3 moves per model step\\)"):
        fit_proprio_head(head, torch.zeros(10, 1), torch.zeros(10, 3), torch.zeros(10, 1), FIT, "cpu", False)
    with pytest.raises(UserError, match="do not split into 2 moves"):
        ProprioHead(1, 3, moves=2)


def test_fit_does_not_depend_on_the_units():
    """Normalisation: the same data in other units (pixels vs metres) gives the same head, scaled."""
    heads = []
    for scale in (1.0, 1000.0):
        torch.manual_seed(0)  # same initial weights
        head = ProprioHead(1, 1, FIT.hidden_dim, FIT.hidden_layers)
        fit_proprio_head(head, *walled_moves(4000, scale), replace(FIT, steps=300), "cpu", progress_bar=False)
        heads.append(head)
    x, a = torch.tensor([[4.5], [7.0]]), torch.tensor([[1.0], [-0.5]])
    torch.testing.assert_close(heads[1](x * 1000, a * 1000), heads[0](x, a) * 1000, rtol=1e-3, atol=1e-2)


def test_an_unfitted_head_predicts_no_change_and_rejects_bad_statistics():
    head = ProprioHead(2, 4)
    states = torch.randn(3, 2)
    assert torch.equal(head(states, torch.randn(3, 4)), states)
    with pytest.raises(UserError, match="action_std \\(4 values\\)"):
        head.set_normalization(
            {
                "state_mean": [0, 0],
                "state_std": [1, 1],
                "delta_std": [1, 1],
                "action_mean": [0] * 4,
                "action_std": [1] * 3,
            }
        )
    with pytest.raises(UserError, match="states and 4 action values"):
        fit_proprio_head(head, torch.zeros(10, 2), torch.zeros(10, 2), torch.zeros(10, 2), FIT, "cpu", False)


def test_a_head_that_reads_the_frame_learns_what_the_state_alone_cannot_tell():
    """Fingers closing on a block stop at its width, on air they close: the same state and action, two
    outcomes, told apart only by the picture (here one frame value: is the block between the fingers)."""
    g = torch.Generator().manual_seed(0)
    count = 6000
    states = torch.rand(count, 1, generator=g) * 0.04 + 0.05  # opening, 5-9 cm
    actions = -torch.ones(count, 1)  # close
    block = (torch.rand(count, 1, generator=g) < 0.5).float()
    next_states = torch.where(block > 0, torch.full_like(states, 0.06), torch.full_like(states, 0.005))
    frames = torch.cat([block, torch.randn(count, 3, generator=g)], 1)  # plus values that do not matter
    blind = ProprioHead(1, 1, FIT.hidden_dim, FIT.hidden_layers)
    seeing = ProprioHead(1, 1, FIT.hidden_dim, FIT.hidden_layers, context_dim=4)
    blind_errors = fit_proprio_head(blind, states, actions, next_states, FIT, "cpu", False)
    seeing_errors = fit_proprio_head(seeing, states, actions, next_states, FIT, "cpu", False, frames)
    assert blind_errors["val_mean_abs_error"] > 0.02  # it can only average the two outcomes
    assert seeing_errors["val_mean_abs_error"] < 0.003
    start, close = torch.full((2, 1), 0.08), -torch.ones(2, 1)
    context = torch.tensor([[1.0, 0, 0, 0], [0.0, 0, 0, 0]])
    torch.testing.assert_close(
        seeing(start, close, context), torch.tensor([[0.06], [0.005]]), atol=0.004, rtol=0
    )
    assert build_proprio_head(seeing.config()).context_dim == 4  # the config keeps it
    with pytest.raises(UserError, match="reads a frame latent of 4 values"):
        seeing(start, close)
    with pytest.raises(UserError, match="frame latents of 4 values"):
        fit_proprio_head(seeing, states, actions, next_states, FIT, "cpu", False)


def test_cached_transitions_match_the_post_training_clips(tmp_path):
    """Frame skip k: (s_t, the k actions, s_{t+k}) for every t, actions concatenated in time order like
    the clips that train the predictor."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for episode, length in enumerate([9, 6, 2]):
        states = torch.arange(length * 2, dtype=torch.float32).view(length, 2) + 100 * episode
        actions = -torch.arange((length - 1) * 3, dtype=torch.float32).view(length - 1, 3) - 100 * episode
        z = torch.arange(length * 4, dtype=torch.float32).view(length, 1, 4) + 1000 * episode
        save_file(
            {"z": z, "states": states, "actions": actions}, str(cache / f"episode_{episode:06d}.safetensors")
        )
    (cache / "meta.json").write_text(
        '{"format": "worldjepa-embeddings", "version": 1, "grid": [1, 1], "lengths": [9, 6, 2]}'
    )
    states, actions, next_states, frames = cached_transitions(cache, frame_skip=2)
    assert states.shape == (7 + 4, 2) and actions.shape == (11, 6)  # episode of 2 frames: no transition
    assert frames is None
    with_frames = cached_transitions(cache, frame_skip=2, frames=True).frames
    assert with_frames.shape == (11, 4)  # each transition's start frame, [N * D]
    clips = EmbeddingClips(cache, context_length=1, frame_skip=2)
    assert len(clips) == 11
    for i in range(len(clips)):
        clip = clips[i]
        assert torch.equal(clip["states"][0], states[i]) and torch.equal(clip["states"][1], next_states[i])
        assert torch.equal(clip["actions"][0], actions[i])
        assert torch.equal(clip["z"][0].flatten(), with_frames[i])


def test_per_move_and_frame_context_ask_for_the_learned_head():
    """The preset builds a head of frame-skip moves; options only the learned head has are refused, not
    ignored, on the analytic one."""
    cfg = replace(WorldModelConfig(), frame_skip=5, proprio_fit=ProprioFitConfig(per_move=True))
    assert proprio_head(cfg, 2, 10, 0).moves == 5
    for option in ("per_move", "frame_context"):
        additive = replace(cfg, proprio="additive", proprio_fit=ProprioFitConfig(**{option: True}))
        with pytest.raises(UserError, match=f"proprio_fit.{option} needs the learned proprio head"):
            proprio_head(additive, 2, 10, 64)
