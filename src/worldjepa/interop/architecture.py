"""What network a set of weights is: infer it from a state dict, read it off a module, describe it, rebuild it.

An `Architecture` is a kind (encoder, masked predictor, AC predictor, proprio head, state readout) plus the constructor
arguments of our module. It is inferred from weights alone where the weights determine it:

- width, depth, MLP ratio, qkv bias, in-channels: from the tensor shapes;
- patch size and tubelet: from `patch_embed.proj.weight` ([D, C, p, p] image, [D, C, t, p, p] video);
- position: a fixed sin-cos table (`pos_embed` / `predictor_pos_embed`) that matches the one we compute
  for some token grid means sin-cos, and that grid gives image size and frames; no table, or a table
  that is no sin-cos table (a leftover some RoPE checkpoints carry), means 3D RoPE (V-JEPA 2), loaded
  with the compatibility rotation of the released weights (`rope_compat=True`).

Two things no weight shape tells: the number of attention heads, and, for RoPE networks, the default
input size (RoPE has no table; the encoder reads the grid from its input, the predictors need it as a
default). Heads come from the table of released sizes, else from the official head_dim of 64; sizes
that fit neither (tiny test models) need `num_heads=` (see `Architecture.override`). RoPE networks
default to the V-JEPA 2 release: 256 px, patch 16, 64 frames.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import Tensor, nn

from worldjepa.errors import UserError
from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.object_locator import ObjectLocator
from worldjepa.nn.pixel_patches import PixelPatches
from worldjepa.nn.pos_embed import sincos_2d, sincos_3d
from worldjepa.nn.predictor import MaskedPredictor
from worldjepa.nn.proprio_head import AdditiveProprio, ProprioHead, build_proprio_head
from worldjepa.nn.sizes import AC_PREDICTORS, ENCODERS, PREDICTORS, Size, released
from worldjepa.nn.state_readout import StateReadout
from worldjepa.nn.vit import VisionTransformer

Kind = Literal[
    "encoder", "predictor", "ac_predictor", "proprio_head", "state_readout", "object_locator", "pixel_patches"
]
#: worldjepa's own modules: their config holds every constructor argument (no inference from weights).
OWN_MODULES = ("proprio_head", "state_readout", "object_locator", "pixel_patches")
Family = Literal["ijepa", "vjepa", "vjepa2", "vjepa2_ac", "worldjepa"]

OFFICIAL_HEAD_DIM = 64
ROPE_DEFAULTS = {"img_size": 256, "patch_size": 16, "num_frames": 64}  # V-JEPA 2 release
FAMILY_NAMES = {
    "ijepa": "I-JEPA",
    "vjepa": "V-JEPA",
    "vjepa2": "V-JEPA 2",
    "vjepa2_ac": "V-JEPA 2-AC",
    "worldjepa": "worldjepa",
}
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "encoder": VisionTransformer,
    "predictor": MaskedPredictor,
    "ac_predictor": ActionConditionedPredictor,
    "proprio_head": lambda **config: build_proprio_head(config),
    "state_readout": StateReadout,
    "object_locator": ObjectLocator,
    "pixel_patches": PixelPatches,
}
PREFIXES = ("module.backbone.", "module.", "backbone.")


def canonical_keys(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official names -> ours: strip the DDP / wrapper prefix; I-JEPA's `mask_token` is `mask_tokens.0`."""
    out = {}
    for key, value in state_dict.items():
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        out["mask_tokens.0" if key == "mask_token" else key] = value
    return out


@dataclass(frozen=True)
class Architecture:
    """A network's kind and the constructor arguments of our module for it."""

    kind: Kind
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> Family:
        """The method whose released weights have this shape (sin-cos image/video, RoPE, AC)."""
        if self.kind == "ac_predictor":
            return "vjepa2_ac"
        if self.kind in OWN_MODULES:
            return "worldjepa"
        if self.kwargs.get("pos_embed") == "rope":
            return "vjepa2"
        return "vjepa" if self.kwargs.get("num_frames", 1) > 1 else "ijepa"

    def override(self, **overrides: Any) -> Architecture:
        """Replace constructor arguments (e.g. `num_heads=4`, `img_size=64`); unknown names are a UserError."""
        known = inspect.signature(BUILDERS[self.kind]).parameters
        unknown = sorted(set(overrides) - set(known)) if self.kind not in OWN_MODULES else []
        if unknown:
            raise UserError(
                f"{', '.join(unknown)} is not an argument of the {self.kind}; "
                f"choose from {', '.join(k for k in known if k != 'init_std')}"
            )
        return replace(self, kwargs={**self.kwargs, **overrides})

    def build(self, device: str | torch.device | None = None) -> nn.Module:
        """Construct the module (on the meta device for weight-free construction before a load)."""
        if self.kwargs.get("num_heads", 0) is None:
            width = self.kwargs.get("predictor_embed_dim", self.kwargs.get("embed_dim"))
            raise UserError(
                f"the number of attention heads of this {self.describe()} cannot be read from its weights "
                f"({width} wide is no released size and not a multiple of head_dim {OFFICIAL_HEAD_DIM}); "
                "pass num_heads= (the training config has it)"
            )
        with torch.device(device) if device is not None else nullcontext():
            return BUILDERS[self.kind](**self.kwargs)

    def describe(self) -> str:
        """One line for messages: "ViT-L/16 video encoder, 1024 wide, 24 deep, RoPE"."""
        kw = self.kwargs
        if self.kind == "proprio_head":
            return f"{kw.get('kind', 'learned')} proprio head ({kw.get('state_dim')}-D states)"
        if self.kind == "pixel_patches":
            return f"raw pixel patches ({kw.get('patch_size')} px)"
        if self.kind == "state_readout":
            reads = "state changes between two frames" if kw.get("pair") else "states"
            return f"state readout ({kw.get('image_size')} px frames -> {kw.get('state_dim')}-D {reads})"
        if self.kind == "object_locator":
            return f"object locator ({kw.get('keypoints')} keypoints -> {kw.get('out_dim')} object values)"
        if self.kind == "encoder":
            size = released(ENCODERS, kw["embed_dim"], kw["depth"])
            name = size.name if size else "ViT"
            media = "video" if kw.get("num_frames", 1) > 1 else "image"
            return f"{name}/{kw['patch_size']} {media} encoder, {kw['embed_dim']} wide, {kw['depth']} deep, {_position(kw)}"
        name = FAMILY_NAMES[self.family]
        size = f"{kw['predictor_embed_dim']} wide, {kw['depth']} deep"
        levels = kw.get("num_levels", 1)
        tail = f"for {kw['embed_dim']}-wide encoder tokens" + (f" of {levels} levels" if levels > 1 else "")
        if self.kind == "ac_predictor":
            return f"{name} predictor, {size}, {kw['action_dim']}-D actions, {tail}"
        return f"{name} predictor, {size}, {_position(kw)}, {tail}"


def _position(kwargs: Mapping[str, Any]) -> str:
    if kwargs.get("pos_embed") == "rope":
        return "RoPE" + ("" if kwargs.get("rope_compat") else " (clean rotation)")
    return "3D sin-cos" if kwargs.get("num_frames", 1) > 1 else "2D sin-cos"


def describe(state_dict: Mapping[str, Tensor]) -> str:
    """What a state dict (official or ours, any prefix) holds, in one line; never raises."""
    try:
        return infer_architecture(state_dict).describe()
    except (UserError, KeyError, IndexError, ValueError):
        return f"an unrecognised state dict ({len(state_dict)} tensors)"


def with_article(text: str) -> str:
    """ "ViT-L/16 ..." -> "a ViT-L/16 ...", "I-JEPA ..." -> "an I-JEPA ..." (for messages)."""
    return text if text.startswith(("a ", "an ")) else ("an " if text[0] in "AEIOU" else "a ") + text


# ------------------------------------------------------------------ inference from weights
def _count(state: Mapping[str, Tensor], prefix: str) -> int:
    return len({key.split(".")[1] for key in state if key.startswith(prefix + ".")})


def _heads(table: dict[str, Size], width: int, depth: int, pos_embed: str) -> int | None:
    """A released size's heads (`worldjepa.nn.sizes`), else width / the official head_dim, else unknown."""
    known = released(table, width, depth)
    if known is not None:
        return known.num_heads(pos_embed)
    return width // OFFICIAL_HEAD_DIM if width % OFFICIAL_HEAD_DIM == 0 else None


def _square_factors(n: int, video: bool) -> list[tuple[int, int, int]]:
    """Token grids (T, H, W) with T*H*W = n: square frames for video (largest first), every H x W (square
    first) for images."""
    if video:
        return [(n // (h * h), h, h) for h in range(math.isqrt(n), 0, -1) if n % (h * h) == 0]
    pairs = [(1, h, n // h) for h in range(1, n + 1) if n % h == 0]
    return sorted(pairs, key=lambda g: abs(g[1] - g[2]))


def match_sincos(table: Tensor, video: bool) -> tuple[tuple[int, int, int], bool] | None:
    """The token grid (and uniform_power) whose fixed sin-cos table equals `table` [1, N, D], or None."""
    num, dim = table.shape[-2:]
    stored = table.reshape(num, dim).double()
    for grid in _square_factors(num, video):
        for uniform in (True, False) if video else (True,):
            ours = sincos_3d(dim, *grid, uniform) if video else sincos_2d(dim, grid[1], grid[2])
            if torch.allclose(ours, stored, atol=1e-4, rtol=0):
                return grid, uniform
    return None


def _position_kwargs(
    state: Mapping[str, Tensor], key: str, video: bool, patch: int, tubelet: int
) -> dict[str, Any]:
    """pos_embed / img_size / num_frames / uniform_power from a sin-cos table, or the RoPE defaults."""
    match = match_sincos(state[key], video) if key in state else None
    if match is None:
        frames = ROPE_DEFAULTS["num_frames"] if video else 1
        return {"pos_embed": "rope", "rope_compat": True, "num_frames": frames}
    (depth, height, width), uniform = match
    return {
        "pos_embed": "sincos",
        "img_size": [height * patch, width * patch],
        "num_frames": depth * tubelet if video else 1,
        "uniform_power": uniform,
    }


def _encoder(state: Mapping[str, Tensor]) -> Architecture:
    proj = state["patch_embed.proj.weight"]  # [D, C, p, p] or [D, C, t, p, p]
    width, in_chans, patch = proj.shape[0], proj.shape[1], proj.shape[-1]
    video = proj.ndim == 5
    tubelet = proj.shape[2] if video else 2
    depth = _count(state, "blocks")
    position = _position_kwargs(state, "pos_embed", video, patch, tubelet)
    kwargs = {
        "img_size": ROPE_DEFAULTS["img_size"],
        "patch_size": patch,
        "in_chans": in_chans,
        "embed_dim": width,
        "depth": depth,
        "num_heads": _heads(ENCODERS, width, depth, position["pos_embed"]),
        "mlp_ratio": state["blocks.0.mlp.fc1.weight"].shape[0] / width,
        "qkv_bias": "blocks.0.attn.qkv.bias" in state,
        "tubelet_size": tubelet,
    }
    return Architecture("encoder", kwargs | position)


def _predictor(state: Mapping[str, Tensor], num_levels: int | None = None) -> Architecture:
    fusion = "predictor_embed.0.weight" in state  # V-JEPA 2.1's multi-level fusion MLP
    if fusion and num_levels is None:
        raise UserError(
            "this predictor fuses several encoder levels (V-JEPA 2.1 deep self-supervision); its weights cannot "
            "tell the level count from the token width: pass num_levels= (its run's vjepa21.levels + 1)"
        )
    num_levels = num_levels or 1
    width, fused = state["predictor_embed.0.weight" if fusion else "predictor_embed.weight"].shape
    embed_dim = fused // num_levels
    depth = _count(state, "predictor_blocks")
    table = state.get("predictor_pos_embed")
    video = table is None or match_sincos(table, video=False) is None
    # The predictor has no patch embed: a sin-cos grid is kept as patch 1, tubelet 2 (grid T = frames / 2).
    position = _position_kwargs(state, "predictor_pos_embed", video, patch=1, tubelet=2)
    rope = position["pos_embed"] == "rope"
    kwargs = {
        "embed_dim": embed_dim,
        "predictor_embed_dim": width,
        "depth": depth,
        "num_heads": _heads(PREDICTORS, width, depth, position["pos_embed"]),
        "patch_size": ROPE_DEFAULTS["patch_size"] if rope else 1,
        "tubelet_size": 2,
        "img_size": ROPE_DEFAULTS["img_size"],
        "mlp_ratio": state["predictor_blocks.0.mlp.fc1.weight"].shape[0] / width,
        "qkv_bias": "predictor_blocks.0.attn.qkv.bias" in state,
        "num_mask_tokens": _count(state, "mask_tokens"),
        "num_levels": num_levels,
    }
    return Architecture("predictor", kwargs | position)


def _ac_predictor(state: Mapping[str, Tensor]) -> Architecture:
    width, embed_dim = state["predictor_embed.weight"].shape
    depth = _count(state, "predictor_blocks")
    kwargs = {
        "embed_dim": embed_dim,
        "predictor_embed_dim": width,
        "depth": depth,
        "num_heads": _heads(AC_PREDICTORS, width, depth, "rope"),
        "img_size": ROPE_DEFAULTS["img_size"],
        "patch_size": ROPE_DEFAULTS["patch_size"],
        "action_dim": state["action_encoder.weight"].shape[1],
        "state_dim": state["state_encoder.weight"].shape[1],
        "extrinsics_dim": state["extrinsics_encoder.weight"].shape[1],
        "mlp_ratio": state["predictor_blocks.0.mlp.fc1.weight"].shape[0] / width,
        "qkv_bias": "predictor_blocks.0.attn.qkv.bias" in state,
        "rope_compat": True,
    }
    return Architecture("ac_predictor", kwargs)


def infer_architecture(state_dict: Mapping[str, Tensor], **overrides: Any) -> Architecture:
    """The architecture of an encoder / predictor / AC predictor state dict (official or our key names).

    overrides: constructor arguments the weights cannot give (num_heads for unknown sizes; img_size,
    num_frames for RoPE networks) or that you want otherwise (e.g. `rope_compat=False`).
    """
    state = canonical_keys(state_dict)
    if "action_encoder.weight" in state:
        arch = _ac_predictor(state)
    elif "predictor_embed.weight" in state or "predictor_embed.0.weight" in state:
        arch = _predictor(state, overrides.get("num_levels"))
    elif "patch_embed.proj.weight" in state:
        arch = _encoder(state)
    else:
        some = ", ".join(list(state)[:4])
        raise UserError(
            f"these weights are no JEPA encoder or predictor (no patch_embed.proj.weight or predictor_embed.weight; "
            f"keys start {some}); pass the encoder, target_encoder or predictor entry of the checkpoint"
        )
    # a RoPE checkpoint that carries a sin-cos table: the released weights, so the released rotation
    if overrides.get("pos_embed") == "rope":
        overrides = {"rope_compat": True} | overrides
    return arch.override(**overrides)


# ------------------------------------------------------------------ architecture of a built module
def architecture_of(module: nn.Module) -> Architecture:
    """The constructor arguments that rebuild `module` (weights aside)."""
    if isinstance(module, VisionTransformer):
        return Architecture("encoder", _vit_kwargs(module))
    if isinstance(module, MaskedPredictor):
        return Architecture("predictor", _predictor_kwargs(module))
    if isinstance(module, ActionConditionedPredictor):
        return Architecture("ac_predictor", _ac_predictor_kwargs(module))
    if isinstance(module, ProprioHead | AdditiveProprio):
        return Architecture("proprio_head", module.config())
    if isinstance(module, StateReadout):
        return Architecture("state_readout", module.config())
    if isinstance(module, ObjectLocator):
        return Architecture("object_locator", module.config())
    if isinstance(module, PixelPatches):
        return Architecture("pixel_patches", {"img_size": module.img_size, "patch_size": module.patch_size})
    raise UserError(f"cannot save a {type(module).__name__}: worldjepa saves its ViT, predictors and heads")


def _blocks_kwargs(blocks: nn.ModuleList, width: int) -> dict[str, Any]:
    block = blocks[0]
    return {
        "depth": len(blocks),
        "num_heads": block.attn.num_heads,
        "mlp_ratio": block.mlp.fc1.out_features / width,
        "qkv_bias": block.attn.qkv.bias is not None,
    }


def _grid_kwargs(grid: tuple[int, int, int], patch: int, tubelet: int, video: bool) -> dict[str, Any]:
    depth, height, width = grid
    return {
        "img_size": [height * patch, width * patch],
        "patch_size": patch,
        "num_frames": depth * tubelet if video else 1,
        "tubelet_size": tubelet,
    }


def _rope_kwargs(module: nn.Module) -> dict[str, Any]:
    rope = module.rope
    return {
        "pos_embed": "sincos" if rope is None else "rope",
        "rope_compat": rope is not None and rope.compat,
    }


def _vit_kwargs(encoder: VisionTransformer) -> dict[str, Any]:
    width = encoder.norm.normalized_shape[0]
    return {
        **_grid_kwargs(encoder.grid, encoder.patch_size, encoder.tubelet_size, encoder.video),
        "in_chans": encoder.in_chans,
        "embed_dim": width,
        **_blocks_kwargs(encoder.blocks, width),
        **_rope_kwargs(encoder),
        "uniform_power": encoder.uniform_power,
    }


def _predictor_kwargs(predictor: MaskedPredictor) -> dict[str, Any]:
    width = predictor.predictor_norm.normalized_shape[0]
    return {
        "embed_dim": predictor.predictor_proj.out_features // predictor.num_levels,
        "num_levels": predictor.num_levels,
        "predictor_embed_dim": width,
        **_blocks_kwargs(predictor.predictor_blocks, width),
        **_grid_kwargs(predictor.grid, 1, 2, predictor.video),  # patch 1 keeps the token grid
        "num_mask_tokens": len(predictor.mask_tokens),
        **_rope_kwargs(predictor),
        "uniform_power": predictor.uniform_power,
    }


def _ac_predictor_kwargs(predictor: ActionConditionedPredictor) -> dict[str, Any]:
    width = predictor.predictor_embed.out_features
    return {
        "embed_dim": predictor.predictor_embed.in_features,
        "predictor_embed_dim": width,
        **_blocks_kwargs(predictor.predictor_blocks, width),
        "img_size": list(predictor.grid),
        "patch_size": 1,  # keeps the token grid
        "action_dim": predictor.action_encoder.in_features,
        "state_dim": predictor.state_encoder.in_features,
        "extrinsics_dim": predictor.extrinsics_encoder.in_features,
        "use_extrinsics": predictor.use_extrinsics,
        "rope_compat": predictor.rope.compat,
    }
