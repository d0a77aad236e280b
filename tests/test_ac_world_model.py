"""V-JEPA 2-AC stage 2: embedding cache, post-training losses, KV-cache rollout, the planners' world model."""

import csv

import numpy as np
import pytest
import torch

from worldjepa.data.embedding_cache import EmbeddingClips, build_embedding_cache
from worldjepa.data.trajectories import TrajectoryDataset, TrajectoryWriter
from worldjepa.errors import UserError
from worldjepa.methods.ac_posttrain import ACPostTrainConfig, ACPostTraining
from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.ac_rollout import cached_rollout, predict_next, rollout
from worldjepa.nn.frame_encoder import FrameEncoder
from worldjepa.nn.proprio_head import AdditiveProprio, ProprioHead, unroll_states
from worldjepa.nn.state_readout import StateReadout
from worldjepa.nn.vit import VisionTransformer
from worldjepa.planning import CEM, GoalEnergy
from worldjepa.planning.ac_world_model import ACWorldModel
from worldjepa.planning.goal import GoalImage
from worldjepa.planning.sampling_planner import EXTENSIONS_OFF
from worldjepa.train import TrainConfig, Trainer

SIZE, DIM = 32, 32


def tiny_encoder(seed: int = 0) -> VisionTransformer:
    torch.manual_seed(seed)
    return VisionTransformer(
        img_size=SIZE, patch_size=8, embed_dim=DIM, depth=1, num_heads=2, num_frames=2, pos_embed="rope"
    )


def tiny_predictor(seed: int = 0, depth: int = 2) -> ActionConditionedPredictor:
    torch.manual_seed(seed)
    return ActionConditionedPredictor(
        embed_dim=DIM,
        predictor_embed_dim=32,
        depth=depth,
        num_heads=2,
        img_size=SIZE,
        patch_size=8,
        action_dim=2,
        state_dim=2,
    )


def write_dots(root, episodes: int = 6, length: int = 16, seed: int = 0) -> None:
    """A white 4x4 dot moved by its 2-D action on a black 32x32 image; state = its position / 32."""
    rng = np.random.default_rng(seed)
    with TrajectoryWriter(root, "dot", (SIZE, SIZE), action_dim=2, state_dim=2) as writer:
        for episode in range(episodes):
            pos = rng.uniform(4, 26, size=2)
            moves = rng.uniform(-3, 3, size=(length - 1, 2))
            frames, states = [], []
            for t in range(length):
                image = np.zeros((SIZE, SIZE, 3), np.uint8)
                r, c = np.round(pos).astype(int)
                image[r - 2 : r + 2, c - 2 : c + 2] = 255
                frames.append(image)
                states.append(pos / SIZE)
                if t < length - 1:
                    pos = np.clip(pos + moves[t], 3, 28)
            writer.add_episode(np.stack(frames), moves / SIZE, np.stack(states), seed=episode)


def test_teacher_forcing_uses_no_future_information():
    predictor = tiny_predictor().eval()
    frames, actions, states = torch.randn(2, 4, 4, DIM), torch.randn(2, 4, 2), torch.randn(2, 4, 2)
    with torch.no_grad():
        out = predict_next(predictor, frames, actions, states, (2, 2))
        for t in range(3):
            late = frames.clone(), actions.clone(), states.clone()
            for x in late:
                x[:, t + 1 :] += torch.randn_like(x[:, t + 1 :])
            changed = predict_next(predictor, *late, (2, 2))
            torch.testing.assert_close(changed[:, : t + 1], out[:, : t + 1], atol=1e-6, rtol=0)
            assert not torch.allclose(changed[:, t + 1], out[:, t + 1])


def test_rollout_loss_backpropagates_through_fed_back_predictions():
    predictor = tiny_predictor()
    cfg = ACPostTrainConfig(rollout_steps=3, teacher_forcing_weight=0.0)
    method = ACPostTraining(predictor, (2, 2), cfg=cfg)
    batch = {"z": torch.randn(2, 4, 4, DIM), "actions": torch.randn(2, 3, 2), "states": torch.randn(2, 4, 2)}
    method(batch).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in predictor.predictor_blocks.parameters())

    def second_step_grad(detach: bool) -> torch.Tensor:
        predictor.zero_grad()
        z, a, s = batch["z"], batch["actions"], batch["states"] * 0
        first = predict_next(predictor, z[:, :1], a[:, :1], s[:, :1], (2, 2))
        fed_back = torch.cat([z[:, :1], first.detach() if detach else first], dim=1)
        second = rollout(predictor, fed_back, a, s, 1, (2, 2))
        (second - z[:, 2:3]).abs().mean().backward()
        return predictor.predictor_embed.weight.grad.clone()

    # the gradient of the 2nd rollout step reaches the predictor also through its fed-back 1st prediction
    assert not torch.allclose(second_step_grad(detach=False), second_step_grad(detach=True))


@pytest.mark.parametrize("grid", [(1, 1), (4, 4)])
def test_kv_cache_rollout_matches_full_sequence(grid):
    predictor = tiny_predictor(depth=3).eval()
    start, actions, states = (
        torch.randn(5, grid[0] * grid[1], DIM),
        torch.randn(5, 4, 2),
        torch.randn(5, 4, 2),
    )
    with torch.no_grad():
        cached = cached_rollout(predictor, start, actions, states, grid)
        full = rollout(predictor, start[:, None], actions, states, 4, grid)
    assert cached.shape == (5, 4, grid[0] * grid[1], DIM)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)


def test_cache_is_built_once_and_rebuilt_when_the_encoder_changes(tmp_path):
    write_dots(tmp_path / "traj", episodes=2, length=10)
    encoder = tiny_encoder()
    calls = []
    encoder.register_forward_hook(lambda *_: calls.append(1))
    frames = FrameEncoder(encoder, tokens_per_frame=4)
    cache = build_embedding_cache(tmp_path / "traj", frames, tmp_path / "cache", batch_size=8, device="cpu")
    built = len(calls)
    assert built == 4  # 2 episodes of 10 frames, batches of 8
    build_embedding_cache(tmp_path / "traj", frames, tmp_path / "cache", batch_size=8, device="cpu")
    assert len(calls) == built

    clips = EmbeddingClips(cache, context_length=3)
    pixels = torch.from_numpy(TrajectoryDataset(tmp_path / "traj", 1).episode(0)["frames"][:4])
    torch.testing.assert_close(clips[0]["z"], frames(pixels), atol=1e-6, rtol=0)

    calls.clear()
    with torch.no_grad():
        encoder.norm.bias.add_(0.1)
    with pytest.warns(UserWarning, match="stale"):
        build_embedding_cache(tmp_path / "traj", frames, tmp_path / "cache", batch_size=8, device="cpu")
    assert len(calls) == built
    torch.testing.assert_close(EmbeddingClips(cache, 3)[0]["z"], frames(pixels), atol=1e-6, rtol=0)


def test_clips_follow_trajectory_dataset_indexing(tmp_path):
    write_dots(tmp_path / "traj", episodes=3, length=11)
    cache = build_embedding_cache(
        tmp_path / "traj", FrameEncoder(tiny_encoder(), 1), tmp_path / "cache", device="cpu"
    )
    clips, reference = (
        EmbeddingClips(cache, context_length=3, frame_skip=2),
        TrajectoryDataset(tmp_path / "traj", 4, 2),
    )
    assert len(clips) == len(reference) == 3 * (11 - 7 + 1)
    for i in range(len(clips)):
        item, ref = clips[i], reference[i]
        assert item["z"].shape == (4, 1, DIM)
        assert torch.equal(item["actions"], ref["actions"]) and torch.equal(item["states"], ref["states"])


def test_additive_proprio_sums_the_raw_actions():
    head = AdditiveProprio(state_dim=2, action_dim=4)  # frame skip 2: two raw actions per step
    actions = torch.randn(3, 5, 4)
    states = unroll_states(head, torch.zeros(3, 2), actions)
    torch.testing.assert_close(states[:, -1], actions.unflatten(-1, (2, 2)).sum((1, 2)))


@pytest.mark.parametrize("tokens_per_frame,n", [(1, 1), (4, 4), ("grid", 16)])
@pytest.mark.parametrize("proprio", [True, False])
def test_unroll_shapes(tokens_per_frame, n, proprio):
    head = ProprioHead(2, 2, hidden_dim=16) if proprio else None
    model = ACWorldModel(tiny_encoder(), tiny_predictor(), head, tokens_per_frame)
    obs = {"pixels": torch.randint(0, 256, (1, SIZE, SIZE, 3), dtype=torch.uint8), "state": torch.rand(1, 2)}
    start = model.encode(obs)
    assert start.visual.shape == (1, n, DIM)
    pred = model.unroll(start, torch.randn(7, 5, 2))
    assert pred.visual.shape == (7, 5, n, DIM)
    assert (pred.proprio.shape == (7, 5, 2)) if proprio else pred.proprio is None


@pytest.mark.parametrize("video", [True, False])
def test_save_load_round_trip(tmp_path, video):
    if (
        video
    ):  # V-JEPA 2 style: RoPE video encoder, learned per-move proprio head reading the frame, 2x2 latents
        encoder, tokens = tiny_encoder(), 4
        stats = {
            "state_mean": [1, 2],
            "state_std": [3, 4],
            "action_mean": [1],
            "action_std": [3],
            "delta_std": [0.5, 2],
        }  # what a fit sets: kept in config.json, not in the weights; actions of one move
        head = ProprioHead(2, 2, 16, 3, normalization=stats, context_dim=4 * DIM, moves=2)
        torch.nn.init.normal_(head.mlp[-1].weight)  # not the zero init: make the head matter
    else:  # I-JEPA style: sin-cos image encoder, additive proprio, the full patch grid
        encoder = VisionTransformer(img_size=SIZE, patch_size=8, embed_dim=DIM, depth=1, num_heads=2)
        head, tokens = AdditiveProprio(2, 2), "grid"
    model = ACWorldModel(encoder, tiny_predictor(), head, tokens)
    model.save(tmp_path / "wm")
    loaded = ACWorldModel.load(tmp_path / "wm")
    obs = {"pixels": torch.randint(0, 256, (1, SIZE, SIZE, 3), dtype=torch.uint8), "state": torch.rand(1, 2)}
    actions = torch.randn(6, 3, 2)
    a, b = model.unroll(model.encode(obs), actions), loaded.unroll(loaded.encode(obs), actions)
    assert torch.equal(a.visual, b.visual) and torch.equal(a.proprio, b.proprio)
    if video:  # the head reads the start frame: another picture, the same state, other predicted states
        seen = {**obs, "pixels": 255 - obs["pixels"]}
        assert not torch.allclose(loaded.unroll(loaded.encode(seen), actions).proprio, b.proprio)


@pytest.mark.slow
def test_post_training_learns_dot_dynamics(tmp_path):
    write_dots(tmp_path / "traj", episodes=6, length=16)
    frames = FrameEncoder(tiny_encoder(), tokens_per_frame=4)
    cache = build_embedding_cache(tmp_path / "traj", frames, tmp_path / "run" / "embeddings", device="cpu")
    clips = EmbeddingClips(cache, context_length=3)
    method = ACPostTraining(tiny_predictor(), clips.grid)
    cfg = TrainConfig(
        total_steps=40,
        batch_size=8,
        lr=2e-3,
        start_lr=2e-3,
        weight_decay=0.0,
        final_weight_decay=0.0,
        log_every=5,
        device="cpu",
        progress_bar=False,
        tensorboard=False,
    )
    Trainer(method, clips, None, cfg, tmp_path / "run").fit()
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").read_text().splitlines()))
    first, last = rows[0], rows[-1]
    for key in ("loss", "teacher_forcing_loss", "rollout_loss"):
        assert float(last[key]) < 0.7 * float(first[key]), (key, first[key], last[key])


def test_cem_plans_through_the_world_model():
    model = ACWorldModel(
        tiny_encoder(), tiny_predictor(), ProprioHead(2, 2, hidden_dim=16), tokens_per_frame=1
    )
    pixels = torch.randint(0, 256, (2, SIZE, SIZE, 3), dtype=torch.uint8)
    start = model.encode({"pixels": pixels[:1], "state": torch.rand(1, 2)})
    goal = model.encode({"pixels": pixels[1:], "state": torch.rand(1, 2)})
    planner = CEM(
        2,
        horizon=3,
        samples=16,
        top_k=4,
        iterations=2,
        init_std=1.0,
        momentum=0.15,
        min_std=0.0,
        seed=0,
        **EXTENSIONS_OFF,
    )
    result = planner.plan(model.unroll, start, lambda pred: GoalEnergy()(pred, goal))
    assert result.actions.shape == (3, 2) and np.isfinite(result.energy)


def test_pair_readout_reads_the_goal_state_against_the_current_observation(tmp_path):
    readout = StateReadout(2, SIZE, width=4, pair=True)
    torch.nn.init.normal_(readout.net[-1].weight)
    model = ACWorldModel(
        tiny_encoder(), tiny_predictor(), ProprioHead(2, 2, hidden_dim=16), 4, state_readout=readout
    )
    pixels = torch.randint(0, 256, (2, SIZE, SIZE, 3), dtype=torch.uint8)
    current = {"pixels": pixels[:1], "state": torch.tensor([[0.5, -1.0]])}
    goal = GoalImage(pixels[1].numpy())
    assert model.goal_state_follows_current
    with pytest.raises(UserError, match="relative to the current observation"):
        model.encode_goal(goal)
    change = readout(model.frames.pixels_to_input(pixels[1:]), model.frames.pixels_to_input(pixels[:1]))
    torch.testing.assert_close(model.encode_goal(goal, current).proprio, current["state"] + change)
    model.save(tmp_path / "wm")
    loaded = ACWorldModel.load(tmp_path / "wm")
    assert loaded.state_readout.pair
    torch.testing.assert_close(loaded.encode_goal(goal, current).proprio, current["state"] + change)
