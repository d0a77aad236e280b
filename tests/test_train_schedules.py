"""Schedules, EMA arithmetic and the collapse monitor on values known in closed form."""

import math

import pytest
import torch

from worldjepa.train.ema import ema_update
from worldjepa.train.monitor import collapse_metrics, mean_std, rankme
from worldjepa.train.schedules import cosine, linear, warmup_cosine


def test_warmup_cosine_known_steps():
    args = dict(total=100, warmup=10, start=2e-4, ref=1e-3, final=1e-6)
    assert warmup_cosine(0, **args) == pytest.approx(2e-4)
    assert warmup_cosine(5, **args) == pytest.approx(6e-4)
    assert warmup_cosine(10, **args) == pytest.approx(1e-3)
    assert warmup_cosine(55, **args) == pytest.approx((1e-3 + 1e-6) / 2)
    assert warmup_cosine(100, **args) == pytest.approx(1e-6)
    assert warmup_cosine(0, total=10, warmup=0, start=0.0, ref=1.0, final=0.0) == pytest.approx(1.0)


def test_cosine_weight_decay_rises():
    assert cosine(0, 100, 0.04, 0.4) == pytest.approx(0.04)
    assert cosine(50, 100, 0.04, 0.4) == pytest.approx(0.22)
    assert cosine(100, 100, 0.04, 0.4) == pytest.approx(0.4)
    assert cosine(25, 100, 0.04, 0.4) == pytest.approx(0.4 - 0.36 * 0.5 * (1 + math.cos(math.pi / 4)))


def test_linear_momentum():
    assert linear(0, 100, 0.996, 1.0) == pytest.approx(0.996)
    assert linear(50, 100, 0.996, 1.0) == pytest.approx(0.998)
    assert linear(100, 100, 0.996, 1.0) == pytest.approx(1.0)
    assert linear(0.5, 1.0, 0.996, 1.0) == pytest.approx(0.998)


def test_ema_update_arithmetic():
    torch.manual_seed(0)
    online, target = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3).requires_grad_(False)
    expected = {
        n: 0.9 * t + 0.1 * o for (n, t), o in zip(target.named_parameters(), online.parameters(), strict=True)
    }
    ema_update(target, online, 0.9)
    for n, t in target.named_parameters():
        torch.testing.assert_close(t, expected[n], rtol=0, atol=1e-7)
    before = {n: t.clone() for n, t in target.named_parameters()}
    ema_update(target, online, 1.0)  # momentum 1 freezes the target
    assert all(torch.equal(t, before[n]) for n, t in target.named_parameters())


def test_ema_update_refuses_different_architectures():
    with pytest.raises(ValueError, match="differ by name"):
        ema_update(torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.Linear(2, 2)), 0.5)


def test_rankme_full_rank_and_rank_one():
    d = 16
    assert rankme(torch.eye(d)) == pytest.approx(d, rel=1e-3)
    rank_one = torch.randn(64, 1) @ torch.randn(1, d)
    assert rankme(rank_one) == pytest.approx(1.0, abs=0.05)
    assert rankme(torch.randn(512, d)) > 0.8 * d


def test_mean_std_and_collapse_metrics_shapes():
    z = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert mean_std(z) == pytest.approx(math.sqrt(2.0))
    m = collapse_metrics(torch.ones(2, 5, 4))  # [B, N, D] is flattened; constant features have collapsed
    assert m["emb_std"] == 0.0 and m["rankme"] == pytest.approx(1.0, abs=1e-3)
