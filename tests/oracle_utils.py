"""Load the official-implementation oracle vectors and read their sizes (tests/data/oracle, see its README).

Nothing about the shipped set is written into the tests: shapes, grids, head counts, case names and mask
keys come from each file's `config`, `inputs` and `aux`, so `WORLDJEPA_ORACLE_DIR` can point at any folder
made the same way (other sizes, seeds, batch sizes). WORLDJEPA_TEST_DEVICE=cuda runs the parity tests on a
GPU (TF32 off, so float32 keeps its 1e-5 tolerance).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.predictor import MaskedPredictor
from worldjepa.nn.vit import VisionTransformer

ORACLE_DIR = Path(os.environ.get("WORLDJEPA_ORACLE_DIR", Path(__file__).parent / "data" / "oracle"))
TEST_DEVICE = torch.device(os.environ.get("WORLDJEPA_TEST_DEVICE", "cpu"))
if TEST_DEVICE.type == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

_CAUSAL_MASK_KEY = re.compile(r"attn_mask_built_T(\d+)_H(\d+)_W(\d+)_add(\d+)")
_SINCOS_3D_KEY = re.compile(r"pos_embed_3d_f64_embed(\d+)_grid(\d+)_depth(\d+)_(uniform|plain)")


def load_oracle(name: str, device: torch.device | str = "cpu") -> dict:
    """The oracle file `name`.pt with its tensors on `device`; a missing file fails the test."""
    path = ORACLE_DIR / f"{name}.pt"
    if not path.is_file():
        pytest.fail(f"oracle file {path} is missing (WORLDJEPA_ORACLE_DIR={ORACLE_DIR})")
    return torch.load(path, weights_only=True, map_location=device)


def side(config: dict[str, Any]) -> int:
    """The square input size of an official config (I-JEPA writes `img_size=[32]`)."""
    size = config["img_size"]
    return int(size[0] if isinstance(size, list | tuple) else size)


def token_grid(config: dict[str, Any]) -> tuple[int, int, int]:
    """(T, H, W) tokens of an official encoder config (T = 1 for images)."""
    n = side(config) // config["patch_size"]
    return config.get("num_frames", 1) // config.get("tubelet_size", 1), n, n


def cases(oracle: dict, prefix: str = "") -> list[str]:
    """The oracle's case names that start with `prefix`, in file order."""
    return [name for name in oracle["inputs"] if name.startswith(prefix)]


def causal_mask_keys(aux: dict) -> list[tuple[str, int, int]]:
    """(key, steps, tokens per step) of every block-causal mask in `aux`."""
    found = [(key, _CAUSAL_MASK_KEY.fullmatch(key)) for key in aux]
    return [(key, int(m[1]), int(m[2]) * int(m[3]) + int(m[4])) for key, m in found if m]


def sincos_3d_keys(aux: dict) -> list[tuple[str, int, int, int, bool]]:
    """(key, width, grid side, temporal depth, uniform power) of every 3D sin-cos table in `aux`."""
    found = [(key, _SINCOS_3D_KEY.fullmatch(key)) for key in aux]
    return [(key, int(m[1]), int(m[2]), int(m[3]), m[4] == "uniform") for key, m in found if m]


def encoder_description(config: dict[str, Any], position: str) -> str:
    """The regex `describe()` must match for an official encoder config (a released size adds a name)."""
    media = "video" if config.get("num_frames", 1) > 1 else "image"
    return (
        rf"ViT(-\w+)?/{config['patch_size']} {media} encoder, {config['embed_dim']} wide, "
        rf"{config['depth']} deep, {position}"
    )


# ---------------------------------------------------------------- worldjepa modules from official configs
def ijepa_modules(oracle: dict) -> tuple[VisionTransformer, MaskedPredictor]:
    enc, pred = oracle["config"]["encoder"], oracle["config"]["predictor"]
    geometry = dict(
        img_size=side(enc), patch_size=enc["patch_size"], mlp_ratio=enc["mlp_ratio"], qkv_bias=enc["qkv_bias"]
    )
    encoder = VisionTransformer(
        embed_dim=enc["embed_dim"], depth=enc["depth"], num_heads=enc["num_heads"], **geometry
    )
    predictor = MaskedPredictor(
        embed_dim=pred["embed_dim"],
        predictor_embed_dim=pred["predictor_embed_dim"],
        depth=pred["depth"],
        num_heads=pred["num_heads"],
        **geometry,
    )
    assert predictor.predictor_pos_embed.shape[1] == pred["num_patches"]
    return encoder, predictor


def video_modules(oracle: dict, **position: Any) -> tuple[VisionTransformer, MaskedPredictor]:
    """V-JEPA (sin-cos) or V-JEPA 2 (`pos_embed="rope", rope_compat=True`) encoder and predictor."""
    enc, pred = oracle["config"]["encoder"], oracle["config"]["predictor"]
    geometry = dict(
        img_size=side(enc),
        patch_size=enc["patch_size"],
        num_frames=enc["num_frames"],
        tubelet_size=enc["tubelet_size"],
        mlp_ratio=enc["mlp_ratio"],
        qkv_bias=enc["qkv_bias"],
        uniform_power=enc.get("uniform_power", False),
        **position,
    )
    encoder = VisionTransformer(
        embed_dim=enc["embed_dim"], depth=enc["depth"], num_heads=enc["num_heads"], **geometry
    )
    predictor = MaskedPredictor(
        embed_dim=pred["embed_dim"],
        predictor_embed_dim=pred["predictor_embed_dim"],
        depth=pred["depth"],
        num_heads=pred["num_heads"],
        num_mask_tokens=pred["num_mask_tokens"],
        **geometry,
    )
    return encoder, predictor


def ac_predictor_module(oracle: dict) -> ActionConditionedPredictor:
    cfg = oracle["config"]
    return ActionConditionedPredictor(
        embed_dim=cfg["embed_dim"],
        predictor_embed_dim=cfg["predictor_embed_dim"],
        depth=cfg["depth"],
        num_heads=cfg["num_heads"],
        img_size=side(cfg),
        patch_size=cfg["patch_size"],
        mlp_ratio=cfg["mlp_ratio"],
        qkv_bias=cfg["qkv_bias"],
        action_dim=cfg["action_embed_dim"],
        state_dim=cfg["action_embed_dim"],
        extrinsics_dim=cfg["action_embed_dim"] - 1,  # the official constructor's choice
        rope_compat=True,
    )
