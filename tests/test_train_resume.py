"""The Trainer end to end on a toy method: exact resume, accumulation, bf16, logs and refusals."""

import csv

import pytest
import torch

from ddp_worker import ToyDataset, ToyMethod, grads, toy_config
from worldjepa.errors import UserError
from worldjepa.train import Trainer


def make_method(**kw) -> ToyMethod:
    torch.manual_seed(0)
    return ToyMethod(**kw)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("num_workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_resume_is_bitwise_exact(tmp_path, num_workers):
    # 40 samples, batch 4 x 2 micro-batches -> 5 steps per epoch: the run crosses two epoch boundaries
    cfg = dict(total_steps=12, ckpt_every=3, num_workers=num_workers, grad_clip=1.0)
    straight = make_method()
    Trainer(straight, ToyDataset(), None, toy_config(**cfg), tmp_path / "straight").fit()

    killed = make_method(crash_at=8)  # dies after step 8; the last checkpoint is at step 6
    with pytest.raises(KeyboardInterrupt):
        Trainer(killed, ToyDataset(), None, toy_config(**cfg), tmp_path / "resumed").fit()
    resumed = ToyMethod()  # different init: everything must come from the checkpoint
    trainer = Trainer(resumed, ToyDataset(), None, toy_config(**cfg, resume=True), tmp_path / "resumed")
    assert trainer.step == 6
    trainer.fit()

    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    rows_a, rows_b = read_csv(tmp_path / "straight/metrics.csv"), read_csv(tmp_path / "resumed/metrics.csv")
    assert [r["step"] for r in rows_b] == [
        str(s) for s in range(1, 13)
    ]  # steps 7-8 of the killed run dropped
    for key in ("loss", "lr", "wd", "grad_norm", "rankme", "emb_std", "z_norm"):
        assert [r[key] for r in rows_a] == [r[key] for r in rows_b], key
    assert (tmp_path / "resumed/curves.png").stat().st_size > 0


def test_accumulation_matches_one_big_batch(tmp_path):
    big, acc = make_method(stochastic=False), make_method(stochastic=False)
    Trainer(big, ToyDataset(), None, toy_config(batch_size=8, accum_steps=1), tmp_path / "big").fit()
    Trainer(acc, ToyDataset(), None, toy_config(batch_size=4, accum_steps=2), tmp_path / "acc").fit()
    g_big, g_acc = grads(big), grads(acc)
    assert g_big.keys() == g_acc.keys() and not any(k.startswith("target.") for k in g_big)
    for k in g_big:
        torch.testing.assert_close(g_acc[k], g_big[k], rtol=0, atol=1e-6)


def test_bf16_run_logs_schedules_and_monitors(tmp_path):
    method = make_method()
    target_before = method.target[0].weight.clone()
    cfg = toy_config(total_steps=6, precision="bf16", log_every=2, warmup_steps=2, tensorboard=True)
    trainer = Trainer(method, ToyDataset(), None, cfg, tmp_path)
    trainer_params = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not any(id(p) in trainer_params for p in method.target.parameters())
    last = trainer.fit()
    rows = read_csv(tmp_path / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    # the row of step 2 shows the lr that step used: 0-based index 1, halfway through the 2 warmup steps
    assert float(rows[0]["lr"]) == pytest.approx((cfg.start_lr + cfg.lr) / 2)
    assert last["step"] == 6 and torch.isfinite(torch.tensor(last["loss"])) and last["rankme"] > 1
    assert not torch.equal(method.target[0].weight, target_before)  # EMA moved the target
    assert {"latest.pt", "metrics.csv", "curves.png", "tb"} <= {p.name for p in tmp_path.iterdir()}


def test_refusals(tmp_path):
    Trainer(make_method(), ToyDataset(), None, toy_config(), tmp_path).fit()
    with pytest.raises(UserError, match="resume=true"):
        Trainer(make_method(), ToyDataset(), None, toy_config(), tmp_path)
    with pytest.raises(UserError, match="batch_size 4 -> 2"):
        Trainer(make_method(), ToyDataset(), None, toy_config(resume=True, batch_size=2), tmp_path)
    with pytest.raises(UserError, match="fewer than one optimizer step"):
        Trainer(make_method(), ToyDataset(4), None, toy_config(), tmp_path / "tiny")
    with pytest.raises(UserError, match="exactly one of epochs or total_steps"):
        toy_config(epochs=2)
