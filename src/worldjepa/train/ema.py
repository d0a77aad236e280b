"""Exponential moving average of an online network into its target network (the JEPA target encoder)."""

from __future__ import annotations

import torch


@torch.no_grad()
def ema_update(target: torch.nn.Module, online: torch.nn.Module, momentum: float) -> None:
    """In place, for every parameter: `t = momentum * t + (1 - momentum) * o`.

    `target` and `online` must have the same architecture (parameters matched by name). Uses fused
    `torch._foreach_*` kernels: one launch per dtype/device group instead of one per parameter.
    """
    t_named = dict(target.named_parameters())
    o_named = dict(online.named_parameters())
    if t_named.keys() != o_named.keys():
        missing = sorted(t_named.keys() ^ o_named.keys())[:5]
        raise ValueError(f"ema_update: target and online parameters differ by name, e.g. {missing}")
    t_params = [t_named[k] for k in t_named]
    o_params = [o_named[k].detach() for k in t_named]
    torch._foreach_mul_(t_params, momentum)
    torch._foreach_add_(t_params, o_params, alpha=1.0 - momentum)
