"""Conversion both ways with Hugging Face transformers: `IJepaModel` and `VJEPA2Model`.

- `IJepaModel` is an I-JEPA encoder (2D sin-cos image ViT): our `VisionTransformer` with
  `pos_embed="sincos"`, `num_frames=1`. It has no predictor.
- `VJEPA2Model` is a V-JEPA 2 encoder plus its masked predictor: our RoPE `VisionTransformer` and
  `MaskedPredictor`. Its rotation is the official one of the released weights, so it matches ours
  with `rope_compat=True` (a model trained with the clean rotation is refused: it would compute
  something else there). Its predictor grid comes from `crop_size`, which is square. Called through
  `VJEPA2Model.forward`, its predictor always uses mask token 1 (its default `mask_index`).
  There is no V-JEPA (1) or V-JEPA 2-AC model in transformers.

Names: transformers splits our fused `attn.qkv` Linear into three (q/k/v_proj or query/key/value)
and stacks the mask tokens into one tensor [n, 1, 1, d]; everything else is a renamed prefix.
transformers is optional: it is imported only here, when a conversion is asked for.
"""

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn

from worldjepa.errors import UserError
from worldjepa.interop.architecture import Architecture, architecture_of
from worldjepa.interop.strict_load import build_loaded
from worldjepa.nn.attention import LAYER_NORM_EPS
from worldjepa.nn.vit import as_pair

# our module prefix -> transformers module prefix; "{i}" is the block index; first match wins.
IJEPA_NAMES = [
    ("patch_embed.proj", "embeddings.patch_embeddings.projection"),
    ("pos_embed", "embeddings.position_embeddings"),
    ("blocks.{i}.norm1", "layers.{i}.layernorm_before"),
    ("blocks.{i}.norm2", "layers.{i}.layernorm_after"),
    ("blocks.{i}.attn.proj", "layers.{i}.attention.o_proj"),
    ("blocks.{i}.mlp", "layers.{i}.mlp"),
    ("norm", "layernorm"),
]
IJEPA_QKV = ("blocks.{i}.attn.qkv", "layers.{i}.attention.{}_proj", ("q", "k", "v"))
VJEPA2_ENCODER_NAMES = [
    ("patch_embed.proj", "encoder.embeddings.patch_embeddings.proj"),
    ("blocks.{i}.attn.proj", "encoder.layer.{i}.attention.proj"),
    ("blocks.{i}", "encoder.layer.{i}"),
    ("norm", "encoder.layernorm"),
]
VJEPA2_ENCODER_QKV = ("blocks.{i}.attn.qkv", "encoder.layer.{i}.attention.{}", ("query", "key", "value"))
VJEPA2_PREDICTOR_NAMES = [
    ("predictor_embed", "predictor.embeddings.predictor_embeddings"),
    ("predictor_blocks.{i}.attn.proj", "predictor.layer.{i}.attention.proj"),
    ("predictor_blocks.{i}", "predictor.layer.{i}"),
    ("predictor_norm", "predictor.layernorm"),
    ("predictor_proj", "predictor.proj"),
]
VJEPA2_PREDICTOR_QKV = (
    "predictor_blocks.{i}.attn.qkv",
    "predictor.layer.{i}.attention.{}",
    ("query", "key", "value"),
)
HF_MASK_TOKENS = "predictor.embeddings.mask_tokens"

Names = list[tuple[str, str]]
Qkv = tuple[str, str, tuple[str, str, str]]


def require_transformers() -> ModuleType:
    """The transformers module, or a UserError saying how to get it (it is an optional dependency)."""
    try:
        import transformers
    except ImportError:
        raise UserError(
            "Hugging Face conversion needs the transformers package, which is not installed; "
            "pip install transformers (worldjepa itself does not need it)"
        ) from None
    return transformers


# ------------------------------------------------------------------ state dicts
def _expand(names: Names, depth: int) -> Names:
    """Spell out "{i}" for every block, keeping the order (specific prefixes before general ones)."""
    out = []
    for ours, theirs in names:
        if "{i}" in ours:
            out += [(ours.replace("{i}", str(i)), theirs.replace("{i}", str(i))) for i in range(depth)]
        else:
            out.append((ours, theirs))
    return out


def _rename(key: str, pairs: Names) -> str | None:
    for source, target in pairs:
        if key == source or key.startswith(source + "."):
            return target + key[len(source) :]
    return None


def _qkv_keys(qkv: Qkv, depth: int, suffix: str) -> list[tuple[str, list[str]]]:
    ours, theirs, parts = qkv
    return [
        (
            f"{ours.format(i=i)}.{suffix}",
            [f"{theirs.replace('{i}', str(i)).format(p)}.{suffix}" for p in parts],
        )
        for i in range(depth)
    ]


def ours_to_hf(state: Mapping[str, Tensor], names: Names, qkv: Qkv, depth: int) -> dict[str, Tensor]:
    """Our state dict of one module -> transformers keys (qkv split into three)."""
    out, pairs = {}, _expand(names, depth)
    fused = {key: parts for suffix in ("weight", "bias") for key, parts in _qkv_keys(qkv, depth, suffix)}
    for key, value in state.items():
        if key in fused:
            out.update(zip(fused[key], value.chunk(3, dim=0), strict=True))
        elif key.startswith("mask_tokens."):
            continue  # stacked by the caller
        else:
            target = _rename(key, pairs)
            if target is None:
                raise UserError(f"{key} has no Hugging Face counterpart; this model cannot be converted")
            out[target] = value
    return out


def hf_to_ours(state: Mapping[str, Tensor], names: Names, qkv: Qkv, depth: int) -> dict[str, Tensor]:
    """transformers keys of one module -> ours (q, k, v fused); keys of other modules are skipped."""
    pairs = [(theirs, ours) for ours, theirs in _expand(names, depth)]
    out = {}
    for suffix in ("weight", "bias"):
        for key, parts in _qkv_keys(qkv, depth, suffix):
            if all(p in state for p in parts):
                out[key] = torch.cat([state[p] for p in parts], dim=0)
    fused_parts = {
        p for suffix in ("weight", "bias") for _, parts in _qkv_keys(qkv, depth, suffix) for p in parts
    }
    for key, value in state.items():
        target = None if key in fused_parts else _rename(key, pairs)
        if target is not None:
            out[target] = value
    return out


# ------------------------------------------------------------------ configs
def _square(size: int | list[int], what: str) -> int:
    height, width = as_pair(size)
    if height != width:
        raise UserError(f"transformers' {what} takes square inputs; this model is {height}x{width}")
    return height


def hf_config(encoder: Architecture, predictor: Architecture | None = None) -> Any:
    """The transformers config (IJepaConfig or VJEPA2Config) of our encoder (+ V-JEPA 2 predictor)."""
    transformers = require_transformers()
    enc = encoder.kwargs
    common = {"patch_size": enc["patch_size"], "qkv_bias": enc["qkv_bias"], "layer_norm_eps": LAYER_NORM_EPS}
    if encoder.family == "ijepa":
        if predictor is not None:
            raise UserError("transformers' IJepaModel has no predictor; convert the encoder alone")
        return transformers.IJepaConfig(
            hidden_size=enc["embed_dim"],
            num_hidden_layers=enc["depth"],
            num_attention_heads=enc["num_heads"],
            intermediate_size=int(enc["embed_dim"] * enc["mlp_ratio"]),
            image_size=_square(enc["img_size"], "IJepaModel"),
            num_channels=enc["in_chans"],
            hidden_act="gelu",
            **common,
        )
    if encoder.family != "vjepa2":
        raise UserError(
            "transformers has IJepaModel (I-JEPA) and VJEPA2Model (V-JEPA 2) only; "
            f"a {encoder.describe()} has no Hugging Face counterpart"
        )
    if predictor is None:
        raise UserError(
            "transformers' VJEPA2Model holds an encoder and a predictor; convert both "
            "(part='target_encoder+predictor' for an official checkpoint)"
        )
    _check_vjepa2(encoder, predictor)
    pred = predictor.kwargs
    return transformers.VJEPA2Config(
        hidden_size=enc["embed_dim"],
        num_hidden_layers=enc["depth"],
        num_attention_heads=enc["num_heads"],
        mlp_ratio=enc["mlp_ratio"],
        crop_size=_square(enc["img_size"], "VJEPA2Model"),
        frames_per_clip=enc["num_frames"],
        tubelet_size=enc["tubelet_size"],
        in_chans=enc["in_chans"],
        pred_hidden_size=pred["predictor_embed_dim"],
        pred_num_hidden_layers=pred["depth"],
        pred_num_attention_heads=pred["num_heads"],
        pred_mlp_ratio=pred["mlp_ratio"],
        pred_num_mask_tokens=pred["num_mask_tokens"],
        hidden_act="gelu",
        **common,
    )


def _check_vjepa2(encoder: Architecture, predictor: Architecture) -> None:
    enc, pred = encoder.kwargs, predictor.kwargs
    if predictor.family != "vjepa2":
        raise UserError(f"VJEPA2Model needs a V-JEPA 2 predictor, got {predictor.describe()}")
    if pred.get("num_levels", 1) != 1:
        raise UserError(
            f"this predictor predicts {pred['num_levels']} encoder levels (V-JEPA 2.1 deep self-supervision); "
            "VJEPA2Model's predictor predicts the last level only: convert the encoder alone"
        )
    if not (enc["rope_compat"] and pred["rope_compat"]):
        raise UserError(
            "transformers' VJEPA2Model rotates with the released weights' rotation (rope_compat=True); "
            "this model uses the clean rotation and would compute different outputs there"
        )
    enc_grid = [s // enc["patch_size"] for s in as_pair(enc["img_size"])]
    pred_grid = [s // pred["patch_size"] for s in as_pair(pred["img_size"])]
    if enc_grid != pred_grid or enc["embed_dim"] != pred["embed_dim"] or enc["qkv_bias"] != pred["qkv_bias"]:
        raise UserError(
            f"this predictor ({pred_grid[0]}x{pred_grid[1]} tokens, for {pred['embed_dim']}-wide tokens) does not "
            f"pair with the encoder ({enc_grid[0]}x{enc_grid[1]} tokens, {enc['embed_dim']} wide); "
            "convert an encoder and the predictor trained with it"
        )


def architectures_from_hf(config: Any) -> dict[str, Architecture]:
    """Our architectures ("encoder", and "predictor" for V-JEPA 2) for a transformers config."""
    if config.model_type not in ("ijepa", "vjepa2"):
        raise UserError(
            f"a {config.model_type} model is no I-JEPA or V-JEPA 2 model; worldjepa converts those two"
        )
    if config.layer_norm_eps != LAYER_NORM_EPS or config.hidden_act != "gelu":
        raise UserError(
            f"this {config.model_type} config has layer_norm_eps {config.layer_norm_eps} and {config.hidden_act}; "
            f"worldjepa's networks use {LAYER_NORM_EPS} and gelu, as the official JEPA models do"
        )
    width = config.hidden_size
    common = {"embed_dim": width, "patch_size": config.patch_size, "qkv_bias": config.qkv_bias}
    if config.model_type == "ijepa":
        encoder = {
            "img_size": config.image_size,
            "in_chans": config.num_channels,
            "depth": config.num_hidden_layers,
            "num_heads": config.num_attention_heads,
            "mlp_ratio": config.intermediate_size / width,
            "pos_embed": "sincos",
        }
        return {"encoder": Architecture("encoder", common | encoder)}
    video = {
        "img_size": config.crop_size,
        "num_frames": config.frames_per_clip,
        "tubelet_size": config.tubelet_size,
        "pos_embed": "rope",
        "rope_compat": True,
    }
    encoder = {
        "in_chans": config.in_chans,
        "depth": config.num_hidden_layers,
        "num_heads": config.num_attention_heads,
        "mlp_ratio": config.mlp_ratio,
    }
    predictor = {
        "predictor_embed_dim": config.pred_hidden_size,
        "depth": config.pred_num_hidden_layers,
        "num_heads": config.pred_num_attention_heads,
        "mlp_ratio": config.pred_mlp_ratio,
        "num_mask_tokens": config.pred_num_mask_tokens,
    }
    return {
        "encoder": Architecture("encoder", common | video | encoder),
        "predictor": Architecture("predictor", common | video | predictor),
    }


# ------------------------------------------------------------------ models
def to_hf(modules: Mapping[str, nn.Module]) -> Any:
    """Our {"encoder": ..., ("predictor": ...)} -> an `IJepaModel` or `VJEPA2Model` with the same weights."""
    transformers = require_transformers()
    if "encoder" not in modules:
        raise UserError("a Hugging Face model needs an encoder; convert the encoder (and predictor)")
    encoder = modules["encoder"]
    predictor = modules.get("predictor")
    enc_arch = architecture_of(encoder)
    pred_arch = None if predictor is None else architecture_of(predictor)
    config = hf_config(enc_arch, pred_arch)
    depth = enc_arch.kwargs["depth"]
    if config.model_type == "ijepa":
        model = transformers.IJepaModel(config, add_pooling_layer=False)
        state = ours_to_hf(encoder.state_dict(), IJEPA_NAMES, IJEPA_QKV, depth)
    else:
        model = transformers.VJEPA2Model(config)
        state = ours_to_hf(encoder.state_dict(), VJEPA2_ENCODER_NAMES, VJEPA2_ENCODER_QKV, depth)
        pred_state = predictor.state_dict()
        pred_depth = pred_arch.kwargs["depth"]
        state |= ours_to_hf(pred_state, VJEPA2_PREDICTOR_NAMES, VJEPA2_PREDICTOR_QKV, pred_depth)
        state[HF_MASK_TOKENS] = torch.stack(
            [t for k, t in pred_state.items() if k.startswith("mask_tokens.")]
        )
    model.load_state_dict(state, strict=True)
    return model.to(encoder.norm.weight.dtype).eval()


def from_hf(model: Any) -> dict[str, nn.Module]:
    """An `IJepaModel` / `VJEPA2Model` -> our {"encoder": ..., ("predictor": ...)} with the same weights."""
    archs = architectures_from_hf(model.config)
    state = model.state_dict()
    source = f"Hugging Face {type(model).__name__}"
    if model.config.model_type == "ijepa":
        depth = archs["encoder"].kwargs["depth"]
        return {
            "encoder": build_loaded(
                archs["encoder"], hf_to_ours(state, IJEPA_NAMES, IJEPA_QKV, depth), source
            )
        }
    enc_depth, pred_depth = archs["encoder"].kwargs["depth"], archs["predictor"].kwargs["depth"]
    pred_state = hf_to_ours(state, VJEPA2_PREDICTOR_NAMES, VJEPA2_PREDICTOR_QKV, pred_depth)
    pred_state |= {f"mask_tokens.{i}": t for i, t in enumerate(state[HF_MASK_TOKENS])}
    enc_state = hf_to_ours(state, VJEPA2_ENCODER_NAMES, VJEPA2_ENCODER_QKV, enc_depth)
    return {
        "encoder": build_loaded(archs["encoder"], enc_state, source),
        "predictor": build_loaded(archs["predictor"], pred_state, source),
    }


def save_hf(
    modules: Mapping[str, nn.Module], directory: str | Path, dtype: torch.dtype = torch.float32
) -> Path:
    """Write our modules as a transformers model folder (`save_pretrained`: config.json + safetensors)."""
    directory = Path(directory)
    to_hf(modules).to(dtype).save_pretrained(directory)
    return directory


def load_hf(directory: str | Path) -> dict[str, nn.Module]:
    """Our modules from a local transformers model folder (never downloads)."""
    transformers = require_transformers()
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise UserError(
            f"{directory} is not a Hugging Face model folder (no config.json); pass a local folder"
        )
    config = transformers.AutoConfig.from_pretrained(directory, local_files_only=True)
    classes = {"ijepa": transformers.IJepaModel, "vjepa2": transformers.VJEPA2Model}
    if config.model_type not in classes:
        raise UserError(f"{directory} holds a {config.model_type} model; worldjepa converts ijepa and vjepa2")
    kwargs = {"add_pooling_layer": False} if config.model_type == "ijepa" else {}
    model = classes[config.model_type].from_pretrained(directory, local_files_only=True, **kwargs)
    return from_hf(model)
