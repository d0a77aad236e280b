"""AdamW parameter groups, per-step hyperparameters, and the device/precision helpers."""

import pytest
import torch
from torch import nn

from worldjepa.errors import UserError
from worldjepa.train.device import autocast, native_bf16, resolve_device, to_device
from worldjepa.train.optim import build_adamw, param_groups, set_hparams


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.pos_embed = nn.Parameter(torch.zeros(1, 3, 4))
        self.mask_tokens = nn.ParameterList([nn.Parameter(torch.zeros(1, 1, 4))])
        self.target = nn.Linear(4, 4).requires_grad_(False)


def names(model, group):
    ids = {id(p) for p in group["params"]}
    return sorted(n for n, p in model.named_parameters() if id(p) in ids)


def test_decay_split_and_frozen_params_excluded():
    model = Tiny()
    decay, no_decay = param_groups(model)
    assert names(model, decay) == ["proj.weight"]
    assert names(model, no_decay) == ["mask_tokens.0", "norm.bias", "norm.weight", "pos_embed", "proj.bias"]


def test_set_hparams_schedules_only_the_decay_group():
    opt = build_adamw(Tiny(), lr=1.0, betas=(0.9, 0.95))
    set_hparams(opt, lr=3e-4, weight_decay=0.1)
    assert [g["lr"] for g in opt.param_groups] == [3e-4, 3e-4]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="not valid"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_autocast_bf16_on_cpu_only_where_it_is_native():
    x = torch.randn(2, 3)
    cpu = torch.device("cpu")
    with autocast(cpu, "bf16"):  # an emulated bf16 runs 7-8x slower than float32 (native_bf16's docstring)
        assert (x @ x.T).dtype == (torch.bfloat16 if native_bf16(cpu) else torch.float32)
    with autocast(torch.device("cpu"), "fp32"):
        assert (x @ x.T).dtype == torch.float32
    with pytest.raises(UserError, match="precision"):
        autocast(torch.device("cpu"), "fp16")


def test_to_device_nested():
    batch = {"x": torch.ones(1), "masks": [torch.zeros(1)], "seed": 3}
    moved = to_device(batch, torch.device("cpu"))
    assert moved["seed"] == 3 and isinstance(moved["masks"], list)
