"""Numerical parity with the official I-JEPA, V-JEPA and V-JEPA 2(-AC) implementations.

Modules are built from each oracle file's `config`, weights loaded through worldjepa.interop.official;
every case is run in float32 (against `outputs`, atol 1e-5) and float64 (against `outputs_f64`, atol 1e-9).
"""

import pytest
import torch

from oracle_utils import (
    TEST_DEVICE,
    ac_predictor_module,
    cases,
    causal_mask_keys,
    ijepa_modules,
    load_oracle,
    video_modules,
)
from worldjepa.interop.official import load_official_state
from worldjepa.nn.ac_predictor import block_causal_mask
from worldjepa.nn.rope import rotate

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
@pytest.mark.parametrize("dtype", DTYPES)
def test_ijepa(dtype):
    oracle = load_oracle("ijepa", TEST_DEVICE)
    encoder, predictor = ijepa_modules(oracle)
    encoder, predictor = (
        build(oracle, "encoder", encoder, dtype),
        build(oracle, "predictor", predictor, dtype),
    )
    inputs = oracle["inputs"]
    with torch.no_grad():
        check(oracle, "enc_full", encoder(cast(inputs["enc_full"]["img"], dtype)), dtype)
        case = inputs["enc_masked"]
        check(oracle, "enc_masked", encoder(cast(case["img"], dtype), keep=case["masks_enc"][0]), dtype)
        for name in cases(oracle, "pred"):
            case = inputs[name]
            keep_tgt = torch.cat(case["masks_pred"])  # the official layout: row j*B + b
            check(oracle, name, predictor(cast(case["x"], dtype), case["masks_enc"][0], keep_tgt), dtype)


# ---------------------------------------------------------------- V-JEPA (1) and V-JEPA 2
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("name", "position"),
    [("vjepa1", {"pos_embed": "sincos"}), ("vjepa2_pretrain", {"pos_embed": "rope", "rope_compat": True})],
)
def test_video_encoder_and_predictor(name, position, dtype):
    """V-JEPA calls its predictor (ctxt, tgt, masks_ctxt, masks_tgt, mask_index), V-JEPA 2 (x, masks_x,
    masks_y, mask_index): the same arguments under other names (V-JEPA's `tgt` is unused with mask tokens)."""
    oracle = load_oracle(name, TEST_DEVICE)
    encoder, predictor = video_modules(oracle, **position)
    encoder, predictor = (
        build(oracle, "encoder", encoder, dtype),
        build(oracle, "predictor", predictor, dtype),
    )
    inputs = oracle["inputs"]
    with torch.no_grad():
        check(oracle, "enc_full", encoder(cast(inputs["enc_full"]["video"], dtype)), dtype)
        case = inputs["enc_masked"]
        check(oracle, "enc_masked", encoder(cast(case["video"], dtype), keep=case["masks_x"]), dtype)
        for case_name in cases(oracle, "pred"):
            case = inputs[case_name]
            context, keep_context, keep_target = (
                (case["ctxt"], case["masks_ctxt"], case["masks_tgt"])
                if "ctxt" in case
                else (case["x"], case["masks_x"], case["masks_y"])
            )
            out = predictor(cast(context, dtype), keep_context, keep_target, case["mask_index"])
            check(oracle, case_name, out, dtype)


# ---------------------------------------------------------------- V-JEPA 2-AC
@pytest.mark.parametrize("dtype", DTYPES)
def test_vjepa2_ac_predictor(dtype):
    oracle = load_oracle("vjepa2_ac_predictor", TEST_DEVICE)
    model = build(oracle, "predictor", ac_predictor_module(oracle), dtype)
    with torch.no_grad():
        for name in cases(oracle):
            case = oracle["inputs"][name]
            out = model(cast(case["x"], dtype), cast(case["actions"], dtype), cast(case["states"], dtype))
            check(oracle, name, out, dtype)


def test_vjepa2_ac_mask():
    aux = load_oracle("vjepa2_ac_predictor", TEST_DEVICE)["aux"]
    masks = causal_mask_keys(aux)
    assert masks, "the AC oracle holds no attn_mask_built_T*_H*_W*_add* entry"
    for key, steps, tokens_per_step in masks:
        assert torch.equal(block_causal_mask(steps, tokens_per_step, device=TEST_DEVICE), aux[key]), key


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
