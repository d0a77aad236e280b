"""Numerical parity with the official I-JEPA, V-JEPA and V-JEPA 2(-AC) implementations.

Weights from the oracle files are loaded through worldjepa.interop.official; every case is run in
float32 (against `outputs`, atol 1e-5) and float64 (against `outputs_f64`, atol 1e-9).
"""

import pytest
import torch

from oracle_utils import TEST_DEVICE, load_oracle
from worldjepa.interop.official import load_official_state
from worldjepa.nn.ac_predictor import ActionConditionedPredictor, block_causal_mask
from worldjepa.nn.predictor import MaskedPredictor, repeat_for_targets
from worldjepa.nn.rope import rotate
from worldjepa.nn.vit import VisionTransformer

ATOL = {torch.float32: 1e-5, torch.float64: 1e-9}
DTYPES = [torch.float32, torch.float64]


def build(oracle: dict, part: str, model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    load_official_state(model, oracle["state_dict_official"][part])
    return model.to(TEST_DEVICE, dtype).eval()


def check(oracle: dict, case: str, out: torch.Tensor, dtype: torch.dtype) -> None:
    expected = oracle["outputs" if dtype == torch.float32 else "outputs_f64"][case]
    assert out.dtype == dtype and out.shape == expected.shape
    torch.testing.assert_close(out, expected, atol=ATOL[dtype], rtol=0)


def cast(x, dtype):
    return x.to(dtype) if x.is_floating_point() else x


# ---------------------------------------------------------------- I-JEPA
def ijepa_models(oracle: dict, dtype: torch.dtype):
    enc = oracle["config"]["encoder"]
    encoder = VisionTransformer(
        img_size=enc["img_size"],
        patch_size=enc["patch_size"],
        embed_dim=enc["embed_dim"],
        depth=enc["depth"],
        num_heads=enc["num_heads"],
    )
    pred = oracle["config"]["predictor"]
    predictor = MaskedPredictor(
        embed_dim=pred["embed_dim"],
        predictor_embed_dim=pred["predictor_embed_dim"],
        depth=pred["depth"],
        num_heads=pred["num_heads"],
        img_size=32,
        patch_size=8,
    )
    return build(oracle, "encoder", encoder, dtype), build(oracle, "predictor", predictor, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ijepa(dtype):
    oracle = load_oracle("ijepa", TEST_DEVICE)
    encoder, predictor = ijepa_models(oracle, dtype)
    inputs = oracle["inputs"]
    with torch.no_grad():
        check(oracle, "enc_full", encoder(cast(inputs["enc_full"]["img"], dtype)), dtype)
        case = inputs["enc_masked"]
        check(oracle, "enc_masked", encoder(cast(case["img"], dtype), keep=case["masks_enc"][0]), dtype)
        case = inputs["pred"]
        ctx, keep_ctx, keep_tgt = repeat_for_targets(
            cast(case["x"], dtype), case["masks_enc"][0], case["masks_pred"]
        )
        check(oracle, "pred", predictor(ctx, keep_ctx, keep_tgt), dtype)


# ---------------------------------------------------------------- V-JEPA (1)
def vjepa_models(oracle: dict, dtype: torch.dtype, pos_embed: str, **extra):
    enc, pred = oracle["config"]["encoder"], oracle["config"]["predictor"]
    common = dict(
        img_size=enc["img_size"],
        patch_size=enc["patch_size"],
        num_frames=enc["num_frames"],
        tubelet_size=enc["tubelet_size"],
        pos_embed=pos_embed,
        **extra,
    )
    encoder = VisionTransformer(
        embed_dim=enc["embed_dim"], depth=enc["depth"], num_heads=enc["num_heads"], **common
    )
    predictor = MaskedPredictor(
        embed_dim=pred["embed_dim"],
        predictor_embed_dim=pred["predictor_embed_dim"],
        depth=pred["depth"],
        num_heads=pred["num_heads"],
        num_mask_tokens=pred["num_mask_tokens"],
        **common,
    )
    return build(oracle, "encoder", encoder, dtype), build(oracle, "predictor", predictor, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vjepa1(dtype):
    oracle = load_oracle("vjepa1", TEST_DEVICE)
    encoder, predictor = vjepa_models(oracle, dtype, "sincos")
    inputs = oracle["inputs"]
    with torch.no_grad():
        check(oracle, "enc_full", encoder(cast(inputs["enc_full"]["video"], dtype)), dtype)
        case = inputs["enc_masked"]
        check(oracle, "enc_masked", encoder(cast(case["video"], dtype), keep=case["masks_x"]), dtype)
        for name in ("pred_mi0", "pred_mi1"):
            case = inputs[name]
            out = predictor(
                cast(case["ctxt"], dtype), case["masks_ctxt"], case["masks_tgt"], case["mask_index"]
            )
            check(oracle, name, out, dtype)


# ---------------------------------------------------------------- V-JEPA 2
@pytest.mark.parametrize("dtype", DTYPES)
def test_vjepa2_pretrain(dtype):
    oracle = load_oracle("vjepa2_pretrain", TEST_DEVICE)
    encoder, predictor = vjepa_models(oracle, dtype, "rope", rope_compat=True)
    inputs = oracle["inputs"]
    with torch.no_grad():
        check(oracle, "enc_full", encoder(cast(inputs["enc_full"]["video"], dtype)), dtype)
        case = inputs["enc_masked"]
        check(oracle, "enc_masked", encoder(cast(case["video"], dtype), keep=case["masks_x"]), dtype)
        for name in ("pred_mi0", "pred_mi1"):
            case = inputs[name]
            out = predictor(cast(case["x"], dtype), case["masks_x"], case["masks_y"], case["mask_index"])
            check(oracle, name, out, dtype)


def ac_predictor(oracle: dict, dtype: torch.dtype) -> ActionConditionedPredictor:
    cfg = oracle["config"]
    model = ActionConditionedPredictor(
        embed_dim=cfg["embed_dim"],
        predictor_embed_dim=cfg["predictor_embed_dim"],
        depth=cfg["depth"],
        num_heads=cfg["num_heads"],
        img_size=cfg["img_size"],
        patch_size=cfg["patch_size"],
        action_dim=cfg["action_embed_dim"],
        state_dim=cfg["action_embed_dim"],
        rope_compat=True,
    )
    return build(oracle, "predictor", model, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vjepa2_ac_predictor(dtype):
    oracle = load_oracle("vjepa2_ac_predictor", TEST_DEVICE)
    model = ac_predictor(oracle, dtype)
    with torch.no_grad():
        for name, case in oracle["inputs"].items():
            out = model(cast(case["x"], dtype), cast(case["actions"], dtype), cast(case["states"], dtype))
            check(oracle, name, out, dtype)


def test_vjepa2_ac_mask():
    oracle = load_oracle("vjepa2_ac_predictor", TEST_DEVICE)
    expected = oracle["aux"]["attn_mask_built_T4_H4_W4_add2"]
    assert torch.equal(block_causal_mask(4, 4 * 4 + 2, device=TEST_DEVICE), expected)


def test_rope_unit():
    unit = load_oracle("vjepa2_ac_predictor", TEST_DEVICE)["aux"]["rope_unit"]
    x = unit["x"]
    torch.testing.assert_close(rotate(x, unit["pos_1d"], compat=True), unit["out_pos_1d"], atol=1e-6, rtol=0)
    torch.testing.assert_close(
        rotate(x.double(), unit["pos_1d"], compat=True), unit["out_pos_1d_f64"], atol=1e-12, rtol=0
    )
    torch.testing.assert_close(
        rotate(x, unit["pos_3d_int64"], compat=True), unit["out_pos_3d"], atol=1e-6, rtol=0
    )
