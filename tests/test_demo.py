"""A tiny end-to-end run of the main job: collect -> stage 1 -> stage 2 -> closed-loop planning."""

import pytest

from worldjepa.data.trajectories import TrajectoryDataset
from worldjepa.demo import SHIPPED_MODELS, run_demo
from worldjepa.errors import UserError
from worldjepa.planning.ac_world_model import ACWorldModel
from worldjepa.presets import SPLIT_SEEDS, load_config
from worldjepa.stages.evaluate import check_unseen_seeds, check_world_model


@pytest.mark.slow
def test_every_stage_runs_and_a_rerun_reuses_them(tmp_path, tiny_world_model_cfg):
    cfg = tiny_world_model_cfg
    table = run_demo(cfg, tmp_path)
    assert "world model" in table and "random" in table
    for path in (
        "data/meta.json",
        "encoder/latest.pt",
        "world_model/config.json",
        "proprio_head.json",
        "state_readout.json",
        "eval/world_model/episode_000.gif",
    ):
        assert (tmp_path / path).is_file(), path
    stamp = (tmp_path / "world_model" / "config.json").stat().st_mtime_ns
    again = run_demo(cfg, tmp_path)  # every training stage is found done and skipped
    assert (tmp_path / "world_model" / "config.json").stat().st_mtime_ns == stamp
    # evaluation is reproducible under fixed seeds (all but the wall-clock column)
    assert [r.rsplit(None, 1)[0] for r in again.splitlines()[:3]] == [
        r.rsplit(None, 1)[0] for r in table.splitlines()[:3]
    ]
    assert "goal images" in table and "(test seeds)" in table  # the protocol and the split it used
    data = TrajectoryDataset(tmp_path / "data", clip_length=1)
    model = ACWorldModel.load(tmp_path / "world_model")
    assert model.trained_on["seeds"] == sorted(data.episode_seeds)  # stage 1 and 2 saw the same episodes
    assert model.trained_on["env_id"] == cfg.env.id and model.state_readout is not None
    with pytest.raises(UserError, match=r"the test seeds \[300003\] were used to collect"):
        check_unseen_seeds([5, SPLIT_SEEDS["test"] + 3], "the data")
    with pytest.raises(
        UserError, match="trained on worldjepa/ArmReach-v0, the preset evaluates worldjepa/TwoRooms"
    ):
        check_world_model(model, load_config("wm_two_rooms"), None)


def test_stage_two_takes_a_converted_encoder_folder(tmp_path):
    import torch

    from worldjepa.interop.pretrain_run import load_encoder
    from worldjepa.interop.worldjepa_format import save_modules
    from worldjepa.nn.vit import VisionTransformer

    encoder = VisionTransformer(32, 16, embed_dim=32, depth=1, num_heads=2, num_frames=4, pos_embed="rope")
    save_modules(tmp_path / "released", {"encoder": encoder})
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(load_encoder(tmp_path / "released")(x), encoder.eval()(x))
    with pytest.raises(UserError, match="neither a pretraining run nor a worldjepa model folder"):
        load_encoder(tmp_path)


def test_ablation_encoders_random_init_and_raw_pixels(tmp_path, tiny_world_model_cfg):
    import torch

    from worldjepa.interop.pretrain_run import load_encoder
    from worldjepa.nn.frame_encoder import FrameEncoder
    from worldjepa.stages.posttrain import save_ablation_encoder

    stage1 = tiny_world_model_cfg.stage1(tmp_path / "data")
    first = load_encoder(save_ablation_encoder("random", stage1, tmp_path / "a")).state_dict()
    again = load_encoder(save_ablation_encoder("random", stage1, tmp_path / "b")).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)  # the ablation is reproducible
    pixels = load_encoder(save_ablation_encoder("pixels", stage1, tmp_path / "p"))
    frame = torch.zeros(1, 32, 32, 3, dtype=torch.uint8)
    frame[0, 8:16, 0:8] = 255  # one white patch: row 1, column 0 of the 4x4 grid
    frames = FrameEncoder(pixels, "grid")
    assert frames(frame).shape == (1, 16, 3 * 8 * 8)  # one latent token per 8 px patch
    assert int(pixels(frames.pixels_to_input(frame)).mean(-1).argmax()) == 4  # in the ViT's token order
    with pytest.raises(UserError, match="random or pixels"):
        save_ablation_encoder("sketch", stage1, tmp_path / "x")


@pytest.mark.parametrize("preset, folder", list(SHIPPED_MODELS.items()))
def test_shipped_world_models_plan_under_the_protocol(preset, folder):
    """`worldjepa demo` plans with the shipped model toward goal images: it needs the state readout (the
    goal state from the goal image) and the training seeds that the evaluation checks."""
    cfg = load_config(preset)
    model = ACWorldModel.load(folder)
    assert model.state_readout is not None or cfg.planner.energy.proprio_weight == 0
    check_world_model(model, cfg, None)  # the preset's env, and no evaluation seed among its training seeds
    assert sum(path.stat().st_size for path in folder.iterdir()) < 20e6


def test_true_dynamics_row_plans_the_shipped_encoders_image_energy_through_the_simulator(tmp_path):
    """The reference row that isolates stage 1: goal images only, the simulator's dynamics, the world model's
    encoder scoring the rendered frames; its report names that protocol."""
    from worldjepa.stages.evaluate import run_row

    overrides = ["evaluate.episodes=1", "evaluate.gif_episodes=0", "evaluate.simulator_samples=8"]
    overrides += ["planner.top_k=2", "planner.iterations=1", "planner.horizon=1"]
    cfg = load_config("wm_arm_reach", overrides)
    report = run_row("true_dynamics", cfg, tmp_path, SHIPPED_MODELS["wm_arm_reach"])
    assert report["protocol"] == "privileged dynamics" and report["replans"] == 50
    assert (
        report["episodes"][0]["distances"][-1] < report["episodes"][0]["distances"][0]
    )  # it heads for the goal
    with pytest.raises(UserError, match="the true_dynamics row needs a world model"):
        run_row("true_dynamics", cfg, tmp_path)
