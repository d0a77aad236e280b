"""Load official I-JEPA / V-JEPA / V-JEPA 2 checkpoint dicts into worldjepa networks.

An official checkpoint is a dict with `encoder`, `target_encoder`, `predictor` (and optimizer
state); every state dict key carries the DDP prefix `module.` (I-JEPA, V-JEPA 2-AC) or
`module.backbone.` (V-JEPA, V-JEPA 2). Our parameter names are the official ones, with two
exceptions mapped here: I-JEPA's single `mask_token` is our `mask_tokens.0`, and a `pos_embed` /
`predictor_pos_embed` table that a RoPE network does not use is dropped.
"""

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from worldjepa.errors import UserError

PREFIXES = ("module.backbone.", "module.", "backbone.")
UNUSED_WITH_ROPE = ("pos_embed", "predictor_pos_embed")


def strip_prefix(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Remove the DDP / wrapper prefix from every key."""
    out = {}
    for key, value in state_dict.items():
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        out[key] = value
    return out


def to_worldjepa_keys(state_dict: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Official (prefix-free) keys -> the keys of `model`."""
    own = model.state_dict()
    out = {("mask_tokens.0" if key == "mask_token" else key): value for key, value in state_dict.items()}
    return {key: value for key, value in out.items() if not (key in UNUSED_WITH_ROPE and key not in own)}


def load_official_state(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Strictly load an official state dict into `model`; a mismatch raises UserError listing the keys."""
    state = to_worldjepa_keys(strip_prefix(state_dict), model)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = [f"missing keys: {', '.join(missing)}"] if missing else []
    problems += [f"unexpected keys: {', '.join(unexpected)}"] if unexpected else []
    problems += [f"shape of {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in wrong_shape]
    if problems:
        raise UserError(
            f"checkpoint does not fit {type(model).__name__} ({'; '.join(problems)}); "
            "check that the model config (sizes, depth, patch, pos_embed) matches the checkpoint"
        )
    model.load_state_dict(state, strict=True)


def load_official(path: str | Path, model: nn.Module, key: str = "target_encoder") -> nn.Module:
    """Load `checkpoint[key]` (encoder, target_encoder or predictor) of an official file into model."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if key not in checkpoint:
        raise UserError(f"{path} has no '{key}' entry (it has: {sorted(checkpoint)}); pick one of those")
    load_official_state(model, checkpoint[key])
    return model
