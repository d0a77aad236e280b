"""worldjepa.interop: official checkpoints with inferred architectures, safe loading, our model folder,
Hugging Face conversion and `convert`.

The oracle files hold official checkpoint dicts (`state_dict_official`); they are written to disk as the
official scripts save them and loaded through the public API with no model config: only what no weight
shape tells is passed (num_heads of these tiny sizes; img_size of the RoPE predictors).
"""

import re
import sys

import pytest
import torch

from oracle_utils import cases, encoder_description, load_oracle, side, token_grid
from worldjepa.errors import UserError
from worldjepa.interop import (
    architecture_of,
    convert,
    describe,
    from_hf,
    infer_architecture,
    load_hf,
    load_modules,
    load_official,
    load_official_state,
    load_torch_file,
    read_config,
    save_modules,
    to_hf,
)
from worldjepa.interop.hf import require_transformers
from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.pos_embed import sincos_table
from worldjepa.nn.predictor import MaskedPredictor
from worldjepa.nn.vit import VisionTransformer

ATOL = 1e-5
FILES = {  # oracle name -> official file name
    "ijepa": "ijepa-vith14.pth.tar",
    "vjepa1": "vjepa-vitl16.pth.tar",
    "vjepa2_pretrain": "vjepa2-vitl.pt",
    "vjepa2_ac_predictor": "vjepa2-ac-vitg.pt",
}


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """name -> (oracle dict, path of its official checkpoint file)."""
    root = tmp_path_factory.mktemp("official")
    out = {}
    for name, filename in FILES.items():
        oracle = load_oracle(name)
        torch.save(oracle["state_dict_official"], root / filename)
        out[name] = oracle, root / filename
    return out


def check(oracle: dict, case: str, out: torch.Tensor) -> None:
    torch.testing.assert_close(out, oracle["outputs"][case], atol=ATOL, rtol=0)


def assert_inferred(model: torch.nn.Module, config: dict, keys: tuple[str, ...]) -> None:
    kwargs = architecture_of(model).kwargs
    for key in keys:
        assert kwargs[key] == config[key], key


# ---------------------------------------------------------------- official checkpoints, no config
def test_ijepa_official_inferred(official):
    oracle, path = official["ijepa"]
    enc_cfg, pred_cfg = oracle["config"]["encoder"], oracle["config"]["predictor"]
    encoder = load_official(path, "target_encoder", num_heads=enc_cfg["num_heads"])
    predictor = load_official(path, "predictor", num_heads=pred_cfg["num_heads"])
    assert_inferred(encoder, enc_cfg, ("patch_size", "embed_dim", "depth", "mlp_ratio"))
    assert architecture_of(encoder).kwargs["img_size"] == [side(enc_cfg)] * 2  # from the sin-cos table
    assert re.fullmatch(encoder_description(enc_cfg, "2D sin-cos"), describe(encoder.state_dict()))
    inputs = oracle["inputs"]
    with torch.no_grad():
        check(oracle, "enc_full", encoder(inputs["enc_full"]["img"]))
        case = inputs["enc_masked"]
        check(oracle, "enc_masked", encoder(case["img"], keep=case["masks_enc"][0]))
        for name in cases(oracle, "pred"):
            case = inputs[name]
            check(oracle, name, predictor(case["x"], case["masks_enc"][0], torch.cat(case["masks_pred"])))


def test_vjepa_official_inferred(official):
    oracle, path = official["vjepa1"]
    enc_cfg, pred_cfg = oracle["config"]["encoder"], oracle["config"]["predictor"]
    encoder = load_official(path, "target_encoder", num_heads=enc_cfg["num_heads"])
    predictor = load_official(path, "predictor", num_heads=pred_cfg["num_heads"])
    assert_inferred(encoder, enc_cfg, ("num_frames", "tubelet_size", "uniform_power", "embed_dim", "depth"))
    assert len(predictor.mask_tokens) == pred_cfg["num_mask_tokens"]
    inputs = oracle["inputs"]
    with torch.no_grad():
        check(oracle, "enc_full", encoder(inputs["enc_full"]["video"]))
        case = inputs["enc_masked"]
        check(oracle, "enc_masked", encoder(case["video"], keep=case["masks_x"]))
        for name in cases(oracle, "pred"):
            case = inputs[name]
            check(
                oracle,
                name,
                predictor(case["ctxt"], case["masks_ctxt"], case["masks_tgt"], case["mask_index"]),
            )


def rope_hints(oracle: dict) -> dict[str, dict]:
    """What RoPE weights do not show, per part: heads, and the predictors' default grid (clip size, patch)."""
    config = oracle["config"]
    sizes = ("img_size", "patch_size", "num_frames")
    if "encoder" not in config:  # the AC predictor's file holds the predictor's config only
        return {"predictor": {key: config[key] for key in ("num_heads", "img_size", "patch_size")}}
    return {
        "target_encoder": {key: config["encoder"][key] for key in ("num_heads", *sizes)},
        "predictor": {"num_heads": config["predictor"]["num_heads"]}
        | {key: config["encoder"][key] for key in sizes},
    }


def vjepa2_models(official):
    oracle, path = official["vjepa2_pretrain"]
    hints = rope_hints(oracle)
    encoder = load_official(path, "target_encoder", **hints["target_encoder"])
    predictor = load_official(path, "predictor", **hints["predictor"])
    return oracle, encoder, predictor


def test_vjepa2_official_inferred(official):
    oracle, encoder, predictor = vjepa2_models(official)
    _, path = official["vjepa2_pretrain"]
    num_heads = oracle["config"]["encoder"]["num_heads"]
    default_size = load_official(path, num_heads=num_heads)  # the encoder reads its grid from the input
    with torch.no_grad():
        check(oracle, "enc_full", default_size(oracle["inputs"]["enc_full"]["video"]))
    assert (
        encoder.rope is not None and encoder.rope.compat and predictor.rope.compat
    )  # RoPE, compat by default
    description = encoder_description(oracle["config"]["encoder"], "RoPE")
    assert re.fullmatch(description, describe(encoder.state_dict()))
    inputs = oracle["inputs"]
    with torch.no_grad():
        check(oracle, "enc_full", encoder(inputs["enc_full"]["video"]))
        case = inputs["enc_masked"]
        check(oracle, "enc_masked", encoder(case["video"], keep=case["masks_x"]))
        for name in cases(oracle, "pred"):
            case = inputs[name]
            check(oracle, name, predictor(case["x"], case["masks_x"], case["masks_y"], case["mask_index"]))


def test_vjepa2_checkpoint_carrying_an_unused_pos_embed(official, tmp_path):
    """Some RoPE checkpoints still carry a pos_embed: a non-sin-cos one reads as RoPE and is dropped; a real
    sin-cos one would read as sin-cos, which `pos_embed="rope"` overrides."""
    oracle, path = official["vjepa2_pretrain"]
    config = oracle["config"]["encoder"]
    video = oracle["inputs"]["enc_full"]["video"]
    tokens, width = oracle["outputs"]["enc_full"].shape[1:]
    for table, hint in [
        (torch.zeros(1, tokens, width), {}),
        (sincos_table(width, token_grid(config), True)[None].float(), {"pos_embed": "rope"}),
    ]:
        checkpoint = dict(oracle["state_dict_official"])
        checkpoint["target_encoder"] = {**checkpoint["target_encoder"], "module.backbone.pos_embed": table}
        torch.save(checkpoint, tmp_path / "vjepa2.pt")
        encoder = load_official(tmp_path / "vjepa2.pt", num_heads=config["num_heads"], **hint)
        assert encoder.rope is not None
        with torch.no_grad():
            check(oracle, "enc_full", encoder(video))


def test_vjepa2_ac_official_inferred(official):
    oracle, path = official["vjepa2_ac_predictor"]
    cfg = oracle["config"]
    model = load_official(path, "predictor", expect="ac_predictor", **rope_hints(oracle)["predictor"])
    assert isinstance(model, ActionConditionedPredictor) and model.rope.compat
    assert architecture_of(model).kwargs["action_dim"] == cfg["action_embed_dim"]
    with torch.no_grad():
        for name, case in oracle["inputs"].items():
            check(oracle, name, model(case["x"], case["actions"], case["states"]))


def test_released_sizes_infer_heads_from_the_table():
    """Paper-scale shapes (built on the meta device, no memory): heads and MLP ratio come out right."""
    for width, depth, heads, rope, name in [
        (1024, 24, 16, True, "ViT-L"),
        (1408, 40, 22, True, "ViT-g"),
        (1280, 32, 16, False, "ViT-H"),
    ]:
        with torch.device("meta"):
            mlp_ratio = 48 / 11 if name == "ViT-g" else 4.0
            model = VisionTransformer(
                img_size=224 if not rope else 256,
                patch_size=16,
                embed_dim=width,
                depth=depth,
                num_heads=heads,
                mlp_ratio=mlp_ratio,
                num_frames=16,
                pos_embed="rope" if rope else "sincos",
            )
        state = model.state_dict()
        if not rope:  # a meta table has no values: give it the real one, from which the grid is read
            state["pos_embed"] = sincos_table(width, (8, 14, 14), video=True).float()[None]
        arch = infer_architecture(state)
        assert arch.kwargs["num_heads"] == heads and arch.kwargs["mlp_ratio"] == mlp_ratio
        assert describe(state).startswith(f"{name}/16 video encoder, {width} wide, {depth} deep")
        assert (arch.kwargs["pos_embed"] == "rope") == rope
        if not rope:
            assert arch.kwargs["img_size"] == [224, 224] and arch.kwargs["num_frames"] == 16


def test_unknown_size_needs_num_heads(tmp_path):
    """32 wide: no released size and not a multiple of the official head width (64)."""
    predictor = MaskedPredictor(64, 32, 2, 4, img_size=32, patch_size=8)
    state = {"module." + key: value for key, value in predictor.state_dict().items()}
    torch.save({"predictor": state}, tmp_path / "ijepa.pth.tar")
    with pytest.raises(UserError, match="pass num_heads="):
        load_official(tmp_path / "ijepa.pth.tar", "predictor")


# ---------------------------------------------------------------- safe loading
class WritesMarker:
    """Unpickling this runs `open(path, "w")`: what an attacker's checkpoint would do."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"target_encoder": {"x": torch.zeros(1)}, "hook": WritesMarker(str(marker))}, path)
    with pytest.raises(
        UserError,
        match="pickled Python objects that weights_only loading refuses: .*GLOBAL io.open was not an allowed global by default;",
    ):
        load_official(path)
    with pytest.raises(UserError, match="never runs code from a checkpoint"):
        load_torch_file(path)
    assert not marker.exists()


# ---------------------------------------------------------------- wrong family / size
def test_wrong_family_is_descriptive(official):
    oracle, path = official["ijepa"]
    pred = oracle["config"]["predictor"]
    size = f"{pred['predictor_embed_dim']} wide, {pred['depth']} deep"
    with pytest.raises(
        UserError, match=rf"holds an I-JEPA predictor, {size}.*but a V-JEPA 2-AC predictor was expected"
    ):
        load_official(path, "predictor", expect="ac_predictor", num_heads=pred["num_heads"])


def test_wrong_size_is_descriptive(official, tmp_path):
    oracle, _ = official["ijepa"]
    cfg = oracle["config"]["encoder"]
    small = VisionTransformer(
        img_size=side(cfg),
        patch_size=cfg["patch_size"],
        embed_dim=cfg["embed_dim"] // 2,
        depth=2,
        num_heads=4,
    )
    expected = (
        f"holds an? {encoder_description(cfg, '2D sin-cos')} "
        f"but a ViT/{cfg['patch_size']} image encoder, {cfg['embed_dim'] // 2} wide"
    )
    with pytest.raises(UserError, match=expected):
        load_official_state(small, oracle["state_dict_official"]["target_encoder"])
    small = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4)
    # a folder whose config does not fit its weights
    save_modules(tmp_path / "m", {"encoder": small})
    (tmp_path / "m" / "config.json").write_text(
        (tmp_path / "m" / "config.json").read_text().replace('"depth": 2', '"depth": 3')
    )
    with pytest.raises(
        UserError,
        match=r"model.safetensors \[encoder\] holds a ViT/8 image encoder, 32 wide, 2 deep.*32 wide, 3 deep, 2D sin-cos was expected",
    ):
        load_modules(tmp_path / "m")
    with pytest.raises(
        UserError, match="holds a ViT/8 image encoder.*but a V-JEPA 2-AC predictor was expected"
    ):
        load_modules(tmp_path / "m", expect={"encoder": "ac_predictor"})


# ---------------------------------------------------------------- our folder format
def test_folder_round_trip_fp32_and_bf16(official, tmp_path):
    oracle, encoder, predictor = vjepa2_models(official)
    save_modules(tmp_path / "fp32", {"encoder": encoder, "predictor": predictor})
    loaded = load_modules(tmp_path / "fp32")
    config = read_config(tmp_path / "fp32")
    assert config["dtype"] == "fp32" and config["modules"]["encoder"]["family"] == "vjepa2"
    case = oracle["inputs"][cases(oracle, "pred")[-1]]  # partial masks: context and target tokens
    video = oracle["inputs"]["enc_full"]["video"]
    with torch.no_grad():
        assert torch.equal(loaded["encoder"](video), encoder(video))
        args = case["x"], case["masks_x"], case["masks_y"], case["mask_index"]
        assert torch.equal(loaded["predictor"](*args), predictor(*args))
        assert loaded["predictor"].rope.compat
        save_modules(tmp_path / "bf16", {"encoder": encoder}, dtype="bf16")
        half = load_modules(tmp_path / "bf16")["encoder"]
        assert all(p.dtype == torch.bfloat16 for p in half.parameters())
        torch.testing.assert_close(half(video.bfloat16()).float(), encoder(video), atol=0.1, rtol=0)
        widened = load_modules(tmp_path / "bf16", dtype="fp32")["encoder"]
        assert widened.norm.weight.dtype == torch.float32
    assert (tmp_path / "bf16" / "model.safetensors").stat().st_size < 0.6 * (
        tmp_path / "fp32" / "model.safetensors"
    ).stat().st_size


def test_multi_level_predictor_round_trips_and_names_its_level_count(tmp_path):
    torch.manual_seed(0)
    predictor = MaskedPredictor(32, 16, 1, 2, img_size=16, patch_size=8, num_frames=4, num_levels=3)
    save_modules(tmp_path / "m", {"predictor": predictor})
    loaded = load_modules(tmp_path / "m")["predictor"]
    z, keep_context, keep_target = (
        torch.randn(2, 5, 96),
        torch.arange(5).repeat(2, 1),
        torch.tensor([[6, 7]] * 2),
    )
    with torch.no_grad():
        assert torch.equal(loaded(z, keep_context, keep_target), predictor(z, keep_context, keep_target))
    state = predictor.state_dict()
    with pytest.raises(UserError, match="pass num_levels="):
        infer_architecture(state)
    arch = infer_architecture(state, num_levels=3, num_heads=2, img_size=16)
    assert arch.kwargs["embed_dim"] == 32 and arch.kwargs["num_levels"] == 3
    assert "of 3 levels" in arch.describe()


# ---------------------------------------------------------------- Hugging Face
def test_hf_round_trip_vjepa2_matches_the_oracle(official):
    pytest.importorskip("transformers")
    oracle, encoder, predictor = vjepa2_models(official)
    hf = to_hf({"encoder": encoder, "predictor": predictor})
    inputs = oracle["inputs"]
    name = next(name for name in cases(oracle, "pred") if inputs[name]["mask_index"] == 1)
    case = inputs[name]  # Hugging Face's forward uses mask token 1
    video = inputs["enc_full"]["video"]
    with torch.no_grad():
        out = hf(
            pixel_values_videos=video.transpose(1, 2),
            context_mask=[case["masks_x"]],
            target_mask=[case["masks_y"]],
        )
        check(oracle, "enc_full", out.last_hidden_state)
        # HF's predictor gathers its context from full-length tokens: place the oracle's context there
        width = case["x"].shape[-1]
        tokens = torch.zeros(oracle["outputs"]["enc_full"].shape).scatter(
            1, case["masks_x"][..., None].expand(-1, -1, width), case["x"]
        )
        hf_pred = hf.predictor(tokens, [case["masks_x"]], [case["masks_y"]]).last_hidden_state
        check(oracle, name, hf_pred)
        back = from_hf(hf)
        assert torch.equal(back["encoder"](video), encoder(video))
        args = case["x"], case["masks_x"], case["masks_y"], 1
        torch.testing.assert_close(back["predictor"](*args), predictor(*args), atol=ATOL, rtol=0)


def test_hf_round_trip_ijepa(official):
    pytest.importorskip("transformers")
    oracle, path = official["ijepa"]
    encoder = load_official(path, num_heads=oracle["config"]["encoder"]["num_heads"])
    hf = to_hf({"encoder": encoder})
    img = oracle["inputs"]["enc_full"]["img"]
    with torch.no_grad():
        check(oracle, "enc_full", hf(pixel_values=img).last_hidden_state)
        check(oracle, "enc_full", from_hf(hf)["encoder"](img))


def test_hf_refuses_what_it_cannot_hold(official):
    pytest.importorskip("transformers")
    _, encoder, predictor = vjepa2_models(official)
    with pytest.raises(UserError, match="target_encoder\\+predictor"):
        to_hf({"encoder": encoder})
    clean = architecture_of(encoder).override(rope_compat=False).build()
    with pytest.raises(UserError, match="rope_compat=True"):
        to_hf({"encoder": clean, "predictor": predictor})


def test_missing_transformers_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(UserError, match="pip install transformers"):
        require_transformers()


# ---------------------------------------------------------------- convert
def test_convert_official_hf_worldjepa(official, tmp_path):
    pytest.importorskip("transformers")
    oracle, path = official["vjepa2_pretrain"]
    overrides = rope_hints(oracle)
    both = "target_encoder+predictor"
    hf_dir = convert(path, tmp_path / "hf", "official", "hf", both, overrides=overrides)
    ours_dir = convert(hf_dir, tmp_path / "ours", "hf", "worldjepa", both)
    back_dir = convert(ours_dir, tmp_path / "hf2", "worldjepa", "hf", both)
    direct_dir = convert(path, tmp_path / "direct", "official", "worldjepa", overrides=overrides)
    inputs = oracle["inputs"]
    modules = load_modules(ours_dir)
    with torch.no_grad():
        check(oracle, "enc_full", load_hf(back_dir)["encoder"](inputs["enc_full"]["video"]))
        check(oracle, "enc_full", load_modules(direct_dir)["encoder"](inputs["enc_full"]["video"]))
        for name in cases(oracle, "pred"):
            case = inputs[name]
            check(
                oracle,
                name,
                modules["predictor"](case["x"], case["masks_x"], case["masks_y"], case["mask_index"]),
            )
    assert list(read_config(direct_dir)["modules"]) == ["encoder"]
    with pytest.raises(UserError, match="holds no predictor"):
        convert(direct_dir, tmp_path / "x", "worldjepa", "hf", both)


def test_convert_bf16_and_ac_predictor(official, tmp_path):
    oracle, path = official["vjepa2_ac_predictor"]
    out = convert(
        path,
        tmp_path / "ac",
        "official",
        "worldjepa",
        "predictor",
        "bf16",
        rope_hints(oracle),
    )
    model = load_modules(out, dtype="fp32", expect={"predictor": "ac_predictor"})["predictor"]
    with torch.no_grad():
        for name in cases(oracle):
            case = oracle["inputs"][name]
            torch.testing.assert_close(
                model(case["x"], case["actions"], case["states"]), oracle["outputs"][name], atol=0.05, rtol=0
            )
    with pytest.raises(UserError, match="holds no encoder"):
        convert(out, tmp_path / "hf", "worldjepa", "hf", "encoder")
