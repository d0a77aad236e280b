"""A world model that tracks an object (Push's block): its recorded states, its reads and its post-training."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from worldjepa.data.trajectories import TrajectoryWriter
from worldjepa.errors import UserError
from worldjepa.methods.object_locator_fit import ObjectLocatorFitConfig
from worldjepa.methods.object_tracking import recorded_objects
from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.ac_rollout import cached_rollout
from worldjepa.nn.object_locator import ObjectLocator
from worldjepa.nn.proprio_head import ProprioHead, unroll_states
from worldjepa.nn.state_readout import StateReadout
from worldjepa.nn.vit import VisionTransformer
from worldjepa.planning.ac_world_model import ACWorldModel
from worldjepa.planning.agent import MPCAgent
from worldjepa.planning.cem import CEM
from worldjepa.planning.energy import GoalEnergy
from worldjepa.planning.goal import GoalImage, PrivilegedGoal
from worldjepa.planning.sampling_planner import EXTENSIONS_OFF
from worldjepa.stages.collect import collect
from worldjepa.stages.posttrain import WORLD_MODEL_DIR, run_posttrain, save_ablation_encoder

SIZE, DIM = 32, 32
PROPRIO, OBJECT = 2, 4  # tracked state: proprio, object (x, y, cos, sin), motion (x, y) = 8 values


def test_recorded_objects_carry_the_last_move_and_leave_out_frames_without_the_object(tmp_path):
    length = 6
    objects = np.zeros((length, OBJECT), np.float32)
    objects[:, 0] = [0.0, 0.1, 0.3, 0.6, np.nan, 1.5]  # x; knocked off the table at step 4
    objects[:, 2] = 1.0
    states = np.arange(length * PROPRIO, dtype=np.float32).reshape(length, PROPRIO)
    actions = np.arange(length - 1, dtype=np.float32)[:, None].repeat(2, 1)
    with TrajectoryWriter(tmp_path, "test/Fake-v0", (8, 8), 2, PROPRIO, object_dim=OBJECT) as writer:
        writer.add_episode(np.zeros((length, 8, 8, 3), np.uint8), actions, states, 0, objects=objects)
    kept, transitions = recorded_objects(tmp_path)
    # frame 4 shows no object; frame 5's move is unknown (its predecessor has none): both left out
    assert len(kept.frames) == 4 and kept.episodes.tolist() == [0, 0, 0, 0]
    torch.testing.assert_close(kept.objects[:, 0], torch.tensor([0.0, 0.1, 0.3, 0.6]))
    torch.testing.assert_close(kept.proprio, torch.from_numpy(states[:4]))
    before, action, after = transitions.states, transitions.actions, transitions.next_states
    assert before.shape == (3, PROPRIO + OBJECT + 2)  # transitions 0->1, 1->2, 2->3
    torch.testing.assert_close(before[:, PROPRIO + OBJECT], torch.tensor([0.0, 0.1, 0.2]))  # last x move
    torch.testing.assert_close(after[:, PROPRIO + OBJECT], torch.tensor([0.1, 0.2, 0.3]))
    torch.testing.assert_close(action[:, 0], torch.tensor([0.0, 1.0, 2.0]))
    two = recorded_objects(tmp_path, frame_skip=2)[1]
    torch.testing.assert_close(two.states[:, 2], torch.tensor([0.0, 0.1]))  # 0->2, 1->3
    assert two.actions.shape == (2, 4)
    with TrajectoryWriter(tmp_path / "plain", "test/Fake-v0", (8, 8), 2, PROPRIO) as writer:
        writer.add_episode(np.zeros((length, 8, 8, 3), np.uint8), actions, states, 0)
    with pytest.raises(UserError, match="does not record object states"):
        recorded_objects(tmp_path / "plain")


def tracking_world_model() -> ACWorldModel:
    torch.manual_seed(0)
    encoder = VisionTransformer(img_size=SIZE, patch_size=8, embed_dim=DIM, depth=1, num_heads=2)
    predictor = ActionConditionedPredictor(DIM, 32, 1, 2, SIZE, 8, action_dim=2, state_dim=PROPRIO)
    head = ProprioHead(PROPRIO + OBJECT + 2, 2, hidden_dim=16)
    readout, locator = StateReadout(PROPRIO + OBJECT, SIZE, width=4), ObjectLocator(2, PROPRIO, width=4)
    for last in (head.mlp[-1], readout.net[-1], locator.head[-1]):
        torch.nn.init.normal_(last.weight)  # not the zero init: every part must matter
    return ACWorldModel(encoder, predictor, head, 4, state_readout=readout, object_locator=locator)


def test_a_tracking_world_model_reads_the_object_and_its_motion_and_feeds_the_predictor_the_proprio(
    tmp_path,
):
    model = tracking_world_model()
    pixels = torch.randint(0, 256, (3, SIZE, SIZE, 3), dtype=torch.uint8)
    proprio = torch.rand(3, PROPRIO)
    frames = model.frames.pixels_to_input(pixels)
    located, read = model.object_locator(frames, proprio), model.state_readout(frames)
    first = model.encode({"pixels": pixels[:1], "state": proprio[:1]})
    torch.testing.assert_close(first.proprio[:, :PROPRIO], proprio[:1])
    torch.testing.assert_close(first.proprio[:, PROPRIO : PROPRIO + 2], located[:1])  # x, y: the locator
    torch.testing.assert_close(first.proprio[:, PROPRIO + 2 : PROPRIO + OBJECT], read[:1, PROPRIO + 2 :])
    assert first.proprio[0, PROPRIO + OBJECT :].abs().max() == 0  # no earlier read: at rest
    later = model.encode({"pixels": pixels[1:2], "state": proprio[1:2]}, first, steps=2)
    torch.testing.assert_close(later.proprio[:, PROPRIO + OBJECT :], (located[1:2] - located[:1]) / 2)
    goal = model.encode_goal(GoalImage(pixels[2].numpy()))
    torch.testing.assert_close(goal.proprio, torch.cat([read[2:], torch.zeros(1, 2)], dim=1))
    privileged = model.encode_goal(PrivilegedGoal(pixels[2].numpy(), np.float32([7.0, 8.0])))
    torch.testing.assert_close(privileged.proprio[:, :PROPRIO], torch.tensor([[7.0, 8.0]]))
    torch.testing.assert_close(privileged.proprio[:, PROPRIO:], goal.proprio[:, PROPRIO:])
    actions = torch.randn(5, 3, 2)
    predicted = model.unroll(later, actions)
    states = unroll_states(model.proprio_head, later.proprio.expand(5, -1), actions)
    torch.testing.assert_close(predicted.proprio, states[:, 1:])
    visual = cached_rollout(
        model.predictor, later.visual.expand(5, -1, -1), actions, states[:, :-1, :PROPRIO], model.grid
    )
    torch.testing.assert_close(predicted.visual, visual)
    states_only = model.unroll(later, actions, frames=False)  # for an energy without the image term
    torch.testing.assert_close(states_only.proprio, predicted.proprio)
    assert torch.equal(states_only.visual, later.visual[:, None].expand(5, 3, -1, -1))
    model.save(tmp_path / "wm")
    loaded = ACWorldModel.load(tmp_path / "wm")
    assert loaded.tracks_objects
    again = loaded.encode({"pixels": pixels[1:2], "state": proprio[1:2]}, first, steps=2)
    torch.testing.assert_close(again.proprio, later.proprio)
    with pytest.raises(UserError, match="single-frame"):
        ACWorldModel(
            model.frames.encoder, model.predictor, model.proprio_head, 4, object_locator=model.object_locator
        )


def test_the_agent_gives_a_tracking_world_model_its_last_start_and_the_env_actions_since():
    model = tracking_world_model()
    search = {"horizon": 2, "samples": 8, "top_k": 2, "iterations": 1, "init_std": 1.0, "seed": 0}
    planner = CEM(2, momentum=0.15, min_std=0.0, **search, **EXTENSIONS_OFF)
    energy = GoalEnergy(proprio_weight=1.0, visual_weight=0.0)
    agent = MPCAgent(model, planner, energy, execute_steps=2)
    frames_asked = []
    unroll = model.unroll
    model.unroll = lambda *args, **kwargs: (
        frames_asked.append(kwargs.get("frames", True)) or unroll(*args, **kwargs)
    )
    pixels = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    agent.reset([GoalImage(pixels[2])])
    observations = [{"pixels": pixels[i], "state": np.float32([0.1 * i, 0.2])} for i in range(2)]
    agent.act(observations[0])
    first = agent.start
    agent.act(observations[0])  # the second planned action: no re-plan
    agent.act(observations[1])  # re-plans from the second picture, two env actions later
    expected = model.encode(
        {"pixels": torch.from_numpy(pixels[1:2]), "state": torch.tensor([[0.1, 0.2]])}, first, steps=2
    )
    torch.testing.assert_close(agent.start.proprio, expected.proprio)
    assert agent.start.proprio[0, PROPRIO + OBJECT :].abs().max() > 0
    assert frames_asked == [False, False]  # the image term is off: no frame is predicted


@pytest.mark.slow
def test_posttrain_fits_a_world_model_that_tracks_the_pushed_block(tiny_world_model_cfg, tmp_path):
    collect(
        "worldjepa/ArmPush-v0",
        3,
        tmp_path / "data",
        "expert",
        workers=0,
        image_size=32,
        max_steps=10,
        progress=False,
    )
    locator = ObjectLocatorFitConfig(steps=4, batch_size=8, head_steps=4, head_batch_size=8, width=4)
    cfg = replace(tiny_world_model_cfg.world_model, frame_skip=2, object_locator=locator)
    cfg = replace(cfg, proprio_fit=replace(cfg.proprio_fit, per_move=True))
    encoder = save_ablation_encoder(
        "random", tiny_world_model_cfg.stage1(tmp_path / "data"), tmp_path / "enc"
    )
    run_posttrain(cfg, encoder, tmp_path / "data", tmp_path / "wm")
    model = ACWorldModel.load(tmp_path / "wm" / WORLD_MODEL_DIR)
    assert (
        model.tracks_objects and model.proprio_head.state_dim == 7 + 4 + 2 and model.proprio_head.moves == 2
    )
    assert model.state_readout.state_dim == 7 + 4 and model.predictor.state_encoder.in_features == 7
    assert {"proprio_head.json", "state_readout.json", "object_locator.json"} <= {
        path.name for path in (tmp_path / "wm").iterdir()
    }
    pixels = torch.zeros(1, 32, 32, 3, dtype=torch.uint8)
    assert model.encode({"pixels": pixels, "state": torch.zeros(1, 7)}).proprio.shape == (1, 13)
    collect(
        "worldjepa/ArmReach-v0", 1, tmp_path / "reach", workers=0, image_size=32, max_steps=4, progress=False
    )
    with pytest.raises(UserError, match="records no object states"):
        run_posttrain(cfg, encoder, tmp_path / "reach", tmp_path / "wm2")
