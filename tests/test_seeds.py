"""Same preset + same seed -> the same data, losses and weights, bit for bit (same machine, same threads);
another seed -> other weights. Covers the three stages that draw random numbers: collect, pretrain,
posttrain."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from worldjepa.data.trajectories import TrajectoryDataset
from worldjepa.presets import PretrainPreset
from worldjepa.stages.collect import collect
from worldjepa.stages.posttrain import run_posttrain
from worldjepa.stages.pretrain import run_pretrain
from worldjepa.train.checkpoint import LATEST, load_checkpoint


def losses(run_dir: Path) -> list[str]:
    with (run_dir / "metrics.csv").open(newline="") as f:
        return [row["loss"] for row in csv.DictReader(f)]


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reach_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    collect("worldjepa/ArmReach-v0", 4, root, workers=0, seed=0, image_size=32, max_steps=12, progress=False)
    return root


def test_collect_repeats_itself_whatever_the_worker_count(reach_data, tmp_path):
    collect(
        "worldjepa/ArmReach-v0", 4, tmp_path, workers=2, seed=0, image_size=32, max_steps=12, progress=False
    )
    a, b = TrajectoryDataset(reach_data, clip_length=1), TrajectoryDataset(tmp_path, clip_length=1)
    for i in range(4):
        for key in ("frames", "actions", "states", "seed"):
            np.testing.assert_array_equal(a.episode(i)[key], b.episode(i)[key])
    collect("worldjepa/ArmReach-v0", 1, tmp_path / "other", workers=0, seed=1, image_size=32, max_steps=12,
            progress=False)  # fmt: skip
    other = TrajectoryDataset(tmp_path / "other", clip_length=1).episode(0)
    assert not np.array_equal(other["frames"], a.episode(0)["frames"])


def pretrain(cfg: PretrainPreset, run_dir: Path, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(int(run_dir.name, 36))  # whatever ran before in this process must not matter
    run_pretrain(replace(cfg, train=replace(cfg.train, seed=seed, log_every=1)), run_dir)
    return load_checkpoint(run_dir / LATEST)["model"]


def test_pretrain_seed_fixes_initialisation_losses_and_weights(reach_data, tiny_world_model_cfg, tmp_path):
    cfg = tiny_world_model_cfg.stage1(reach_data)
    first, again = pretrain(cfg, tmp_path / "a", 0), pretrain(cfg, tmp_path / "b", 0)
    assert same_tensors(first, again)
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    other = pretrain(cfg, tmp_path / "c", 1)
    assert not torch.equal(first["encoder.patch_embed.proj.weight"], other["encoder.patch_embed.proj.weight"])


def test_posttrain_seed_fixes_initialisation_losses_and_weights(reach_data, tiny_world_model_cfg, tmp_path):
    encoder_dir = tmp_path / "encoder"
    run_pretrain(tiny_world_model_cfg.stage1(reach_data), encoder_dir)

    def posttrain(run_dir: Path, seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(int(run_dir.name, 36))  # whatever ran before in this process must not matter
        wm = tiny_world_model_cfg.world_model
        cfg = replace(wm, train=replace(wm.train, seed=seed, log_every=1))
        return run_posttrain(cfg, encoder_dir, reach_data, run_dir).predictor.state_dict()

    first, again = posttrain(tmp_path / "a", 0), posttrain(tmp_path / "b", 0)
    assert same_tensors(first, again)
    assert losses(tmp_path / "a" / "predictor") == losses(tmp_path / "b" / "predictor")
    other = posttrain(tmp_path / "c", 1)
    assert not torch.equal(first["predictor_embed.weight"], other["predictor_embed.weight"])
