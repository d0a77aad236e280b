"""Atomic, weights_only-loadable checkpoints with clear errors; exact RNG capture."""

import random

import numpy as np
import pytest
import torch

from worldjepa.errors import UserError
from worldjepa.train.checkpoint import keep_copy, load_checkpoint, load_model_state, save_checkpoint
from worldjepa.train.rng import get_rng_state, seed_everything, set_rng_state


def test_roundtrip_with_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    path = save_checkpoint(
        tmp_path / "latest.pt",
        {
            "step": 5,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "rng": [get_rng_state()],
            "config": {"train": {"betas": (0.9, 0.99)}},
        },
    )
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]  # no temp file left behind
    ckpt = load_checkpoint(path)  # uses weights_only=True
    assert ckpt["step"] == 5
    fresh = torch.nn.Linear(3, 2)
    load_model_state(fresh, ckpt["model"], path)
    assert torch.equal(fresh.weight, model.weight)
    keep_copy(path, tmp_path / "step_5.pt")
    save_checkpoint(path, {"step": 6})
    assert load_checkpoint(tmp_path / "step_5.pt")["step"] == 5 and load_checkpoint(path)["step"] == 6


def test_rng_state_restores_every_generator():
    seed_everything(1)
    state = get_rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    seed_everything(2)
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_clear_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(corrupt)
    torch.save({"encoder": {}}, tmp_path / "official.pt")
    with pytest.raises(UserError, match="not a worldjepa training checkpoint"):
        load_checkpoint(tmp_path / "official.pt")
    path = save_checkpoint(tmp_path / "small.pt", {"model": torch.nn.Linear(3, 2).state_dict()})
    with pytest.raises(UserError, match=r"shape mismatch.*weight \(2, 3\) vs model \(4, 3\)"):
        load_model_state(torch.nn.Linear(3, 4), load_checkpoint(path)["model"], path)
    with pytest.raises(UserError, match="missing key"):
        load_model_state(torch.nn.Sequential(torch.nn.Linear(3, 2)), load_checkpoint(path)["model"], path)
