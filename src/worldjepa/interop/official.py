"""Load official I-JEPA / V-JEPA / V-JEPA 2 / V-JEPA 2-AC checkpoints into worldjepa networks.

An official checkpoint (`.pth.tar` for I-JEPA and V-JEPA, `.pt` for V-JEPA 2) is a dict with
`encoder`, `target_encoder`, `predictor` (and optimizer state, epoch, ...); the V-JEPA 2-AC one holds
the `predictor`. Every state dict key carries the DDP prefix `module.` (I-JEPA, V-JEPA 2-AC) or
`module.backbone.` (V-JEPA, V-JEPA 2). Our parameter names are the official ones, with two exceptions
mapped here: I-JEPA's single `mask_token` is our `mask_tokens.0`, and a `pos_embed` /
`predictor_pos_embed` table that a RoPE network does not use is dropped.

`load_official(path, part)` needs no config: the architecture is inferred from the weights
(`worldjepa.interop.architecture`); pass what the weights cannot say as keyword overrides, e.g.
`num_heads=4` for a size outside the released ones, `img_size=384` for the 384 px V-JEPA 2 release.
V-JEPA 2 weights load with the compatibility rotation of the released weights (`rope_compat=True`).
The file is read with `weights_only=True` (`worldjepa.interop.safe_load`): no code runs from it.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from worldjepa.errors import UserError
from worldjepa.interop.architecture import Kind, canonical_keys, infer_architecture
from worldjepa.interop.safe_load import load_torch_file
from worldjepa.interop.strict_load import build_loaded, check_kind, load_strict

UNUSED_WITH_ROPE = ("pos_embed", "predictor_pos_embed")


def to_worldjepa_keys(state_dict: Mapping[str, Tensor], own: Mapping[str, Any]) -> dict[str, Tensor]:
    """Official keys (any prefix) -> ours, for a module whose state dict keys are `own`."""
    state = canonical_keys(state_dict)
    return {key: value for key, value in state.items() if not (key in UNUSED_WITH_ROPE and key not in own)}


def load_official_state(
    model: nn.Module, state_dict: Mapping[str, Tensor], source: str = "checkpoint"
) -> None:
    """Strictly load an official state dict into an existing `model`; a mismatch names both architectures."""
    load_strict(model, to_worldjepa_keys(state_dict, model.state_dict()), source)


def read_official(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict of an official file, read without unpickling code."""
    checkpoint = load_torch_file(path)
    if not isinstance(checkpoint, dict):
        raise UserError(f"{path} holds a {type(checkpoint).__name__}, not an official checkpoint dict")
    return checkpoint


def official_part(checkpoint: Mapping[str, Any], part: str, source: str) -> Mapping[str, Tensor]:
    """`checkpoint[part]` (encoder, target_encoder or predictor), checked to be a state dict."""
    entry = checkpoint.get(part)
    if not isinstance(entry, Mapping):
        parts = sorted(
            k for k, v in checkpoint.items() if isinstance(v, Mapping) and k not in ("opt", "scaler")
        )
        raise UserError(
            f"{source} has no '{part}' weights; it has: {', '.join(parts) or 'none'}; pick one of those"
        )
    return entry


def build_official(
    state_dict: Mapping[str, Tensor], source: str = "checkpoint", expect: Kind | None = None, **overrides: Any
) -> nn.Module:
    """Infer the architecture of an official state dict, build our module for it and load it strictly.

    expect: the kind the caller needs ("encoder", "predictor", "ac_predictor"); another kind is a UserError.
    """
    arch = infer_architecture(state_dict, **overrides)
    if expect is not None:
        check_kind(arch, expect, source)
    own = arch.build(device="meta").state_dict()
    return build_loaded(arch, to_worldjepa_keys(state_dict, own), source)


def load_official(
    path: str | Path, part: str = "target_encoder", expect: Kind | None = None, **overrides: Any
) -> nn.Module:
    """Our module for `checkpoint[part]` of an official file, in eval mode, with no config needed.

    part: "target_encoder" (the EMA encoder, the one to use for features), "encoder" or "predictor".
    overrides: constructor arguments the weights cannot give (see the module docstring).
    """
    state = official_part(read_official(path), part, str(path))
    return build_official(state, f"{path} [{part}]", expect, **overrides)
