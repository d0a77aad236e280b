"""A tiny end-to-end run of the main job: collect -> stage 1 -> stage 2 -> closed-loop planning."""

import pytest

from worldjepa.config import apply_overrides, load_preset
from worldjepa.data.trajectories import TrajectoryDataset
from worldjepa.demo import run_demo
from worldjepa.errors import UserError
from worldjepa.evaluate import check_unseen_seeds

TINY = [
    "env.image_size=32",
    "collect.episodes=4",
    "collect.workers=0",
    "world_model.tokens_per_frame=1",
    "world_model.predictor_embed_dim=16",
    "world_model.depth=1",
    "world_model.num_heads=2",
    "world_model.cache_precision=fp32",
    "world_model.train.total_steps=3",
    "world_model.train.batch_size=8",
    "world_model.train.tensorboard=false",
    "world_model.train.progress_bar=false",
    "world_model.proprio_fit.steps=20",
    "world_model.proprio_fit.hidden_dim=16",
    "planner.samples=8",
    "planner.top_k=2",
    "planner.iterations=1",
    "planner.horizon=2",
    "evaluate.episodes=2",
    "evaluate.gif_episodes=1",
    "evaluate.baselines=[random]",
]
TINY_ENCODER = [
    "data.image_size=32",
    "data.num_frames=4",
    "model.embed_dim=32",
    "model.depth=1",
    "model.num_heads=2",
    "model.predictor_embed_dim=16",
    "model.predictor_depth=1",
    "model.predictor_num_heads=2",
    "train.batch_size=8",
    "train.total_steps=2",
    "train.num_workers=0",
    "train.tensorboard=false",
    "train.progress_bar=false",
]


@pytest.mark.slow
def test_every_stage_runs_and_a_rerun_reuses_them(tmp_path):
    cfg = apply_overrides(load_preset("wm_arm_reach"), TINY)
    cfg["encoder"]["overrides"] = TINY_ENCODER
    table = run_demo(cfg, tmp_path)
    assert "world model" in table and "random" in table
    for path in (
        "data/meta.json",
        "encoder/latest.pt",
        "world_model/config.json",
        "proprio_head.json",
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
    data = TrajectoryDataset(tmp_path / "data", clip_length=1)
    used = data.episode_seeds[0]
    assert used == int(data.episode(0)["seed"])
    with pytest.raises(UserError, match="were used to collect"):
        check_unseen_seeds(tmp_path / "data", used, 1)


def test_stage_two_takes_a_converted_encoder_folder(tmp_path):
    import torch

    from worldjepa.interop.worldjepa_format import save_modules
    from worldjepa.nn.vit import VisionTransformer
    from worldjepa.posttrain import load_frozen_encoder

    encoder = VisionTransformer(32, 16, embed_dim=32, depth=1, num_heads=2, num_frames=4, pos_embed="rope")
    save_modules(tmp_path / "released", {"encoder": encoder})
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(load_frozen_encoder(tmp_path / "released")(x), encoder.eval()(x))
    with pytest.raises(UserError, match="neither a pretraining run nor a worldjepa model folder"):
        load_frozen_encoder(tmp_path)
