"""Unit tests of the network building blocks (worldjepa.nn) and the official-checkpoint loader."""

import pytest
import torch

from oracle_utils import ijepa_modules, load_oracle, sincos_3d_keys
from worldjepa.errors import UserError
from worldjepa.interop.official import load_official_state
from worldjepa.nn.ac_predictor import ActionConditionedPredictor, block_causal_mask
from worldjepa.nn.pos_embed import sincos_1d, sincos_2d, sincos_3d
from worldjepa.nn.predictor import MaskedPredictor
from worldjepa.nn.rope import RoPE3D, apply_rope, rotate
from worldjepa.nn.vit import VisionTransformer


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_vit(**kw) -> VisionTransformer:
    args = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=2) | kw
    return VisionTransformer(**args).eval()


# ---------------------------------------------------------------- encoder
@pytest.mark.parametrize(
    ("kw", "shape", "tokens"),
    [
        ({}, (2, 3, 32, 32), 16),
        ({"num_frames": 4}, (2, 3, 4, 32, 32), 32),
        ({"num_frames": 4, "pos_embed": "rope"}, (2, 3, 4, 32, 32), 32),
        ({"num_frames": 4, "pos_embed": "rope"}, (2, 3, 32, 32), 16),  # an image as one tubelet
        ({"num_frames": 4, "pos_embed": "rope"}, (2, 3, 2, 32, 48), 24),  # non-square, fewer frames
        ({}, (2, 3, 24, 40), 15),  # sincos on another grid: a fresh table
    ],
)
def test_vit_shapes(kw, shape, tokens):
    model = tiny_vit(**kw)
    x = torch.randn(shape)
    assert model(x).shape == (2, tokens, 48)
    keep = torch.stack([torch.randperm(tokens)[:5].sort().values for _ in range(2)])
    assert model(x, keep=keep).shape == (2, 5, 48)


@pytest.mark.parametrize("pos_embed", ["sincos", "rope"])
def test_vit_keep_all_tokens_shuffled_permutes_rows(pos_embed):
    """Keeping every token in a shuffled order permutes the output rows (positions travel with tokens)."""
    model = tiny_vit(num_frames=4, pos_embed=pos_embed)
    x = torch.randn(1, 3, 4, 32, 32)
    perm = torch.randperm(32)[None]
    with torch.no_grad():
        torch.testing.assert_close(model(x, keep=perm), model(x)[:, perm[0]], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            (1, 3, 30, 30),
            "image size 30x30 is not divisible by patch size 8; resize to a multiple of 8 (e.g. 32x32)",
        ),
        ((1, 1, 32, 32), "input has 1 channels but the model expects 3"),
        ((1, 3, 4, 32, 32), "expects [B, C, H, W]"),
    ],
)
def test_vit_rejects_bad_input(shape, message):
    with pytest.raises(UserError) as err:
        tiny_vit()(torch.randn(shape))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_vit_rejects_odd_frames():
    with pytest.raises(UserError, match="3 frames is not divisible by tubelet size 2"):
        tiny_vit(num_frames=4)(torch.randn(1, 3, 3, 32, 32))


def test_init():
    model = tiny_vit(depth=4)
    w = model.blocks[0].mlp.fc1.weight
    assert abs(w.std().item() - 0.02) < 0.003 and w.abs().max() <= 2.0
    assert all(b.attn.qkv.bias.abs().sum() == 0 for b in model.blocks)
    assert torch.equal(model.norm.weight, torch.ones(48))
    # residual outputs of block l are rescaled by 1/sqrt(2 l)
    assert model.blocks[3].attn.proj.weight.std() < model.blocks[0].attn.proj.weight.std() / 1.5


# ---------------------------------------------------------------- position embeddings
def test_sincos_2d_layout():
    table = sincos_2d(16, 3, 4)  # [12, 16]; token index = h * 4 + w
    grid = table.view(3, 4, 16)
    assert torch.equal(grid[0, :, :8], grid[2, :, :8])  # first half: same for every row -> encodes w
    assert torch.equal(grid[:, 0, 8:], grid[:, 3, 8:])  # second half: same for every column -> encodes h
    assert torch.equal(table[0], torch.cat([torch.zeros(4), torch.ones(4)] * 2).double())  # [sin | cos] at 0


def test_sincos_3d_layouts():
    t, h, w = torch.meshgrid(torch.arange(2), torch.arange(4), torch.arange(4), indexing="ij")
    uniform = sincos_3d(64, 2, 4, 4)  # 22 + 22 + 22 channels, cut to 64: w keeps 20
    assert uniform.shape == (32, 64)
    torch.testing.assert_close(uniform[:, :22], sincos_1d(22, t.flatten()))
    torch.testing.assert_close(uniform[:, 22:44], sincos_1d(22, h.flatten()))
    torch.testing.assert_close(uniform[:, 44:], sincos_1d(22, w.flatten())[:, :20])
    plain = sincos_3d(64, 2, 4, 4, uniform_power=False)  # t: 32, h: 16, w: 16
    torch.testing.assert_close(plain[:, :32], sincos_1d(32, t.flatten()))
    torch.testing.assert_close(plain[:, 48:], sincos_1d(16, w.flatten()))


def test_sincos_tables_match_oracle():
    ijepa = load_oracle("ijepa")
    encoder, predictor = ijepa_modules(ijepa)
    weights = ijepa["state_dict_official"]
    torch.testing.assert_close(encoder.pos_embed, weights["encoder"]["module.pos_embed"], atol=1e-7, rtol=0)
    torch.testing.assert_close(
        predictor.predictor_pos_embed, weights["predictor"]["module.predictor_pos_embed"], atol=1e-7, rtol=0
    )
    aux = load_oracle("vjepa1")["aux"]
    tables = sincos_3d_keys(aux)
    assert tables, "the V-JEPA oracle holds no pos_embed_3d_f64_* table"
    for key, width, side, depth, uniform in tables:
        torch.testing.assert_close(sincos_3d(width, depth, side, side, uniform), aux[key], atol=1e-12, rtol=0)


# ---------------------------------------------------------------- RoPE
def test_rope_clean_is_rotation_compat_differs():
    x, pos = torch.randn(2, 3, 5, 8, dtype=torch.float64), torch.arange(5.0) * 1.7
    clean, compat = rotate(x, pos), rotate(x, pos, compat=True)
    torch.testing.assert_close(clean.norm(dim=-1), x.norm(dim=-1))  # a rotation per channel pair
    assert not torch.allclose(clean, compat)
    # Position 0 leaves a vector unchanged in both variants; the compat map is only a rotation there.
    zero = torch.zeros(5)
    assert torch.equal(rotate(x, zero), x) and torch.equal(rotate(x, zero, compat=True), x)
    assert not torch.allclose(compat.norm(dim=-1), x.norm(dim=-1))


def test_rope_clean_attention_is_relative():
    q, k = torch.randn(8), torch.randn(8)
    score = lambda a, b: rotate(q[None], torch.tensor([a])) @ rotate(k[None], torch.tensor([b]))[0]
    torch.testing.assert_close(score(3.0, 1.0), score(7.0, 5.0))


def test_rope3d_temporal_only_and_rest_channels():
    rope = RoPE3D(16)  # 4 + 4 + 4 rotated, 4 untouched
    x = torch.randn(1, 2, 3, 16)
    pos = torch.tensor([[[2.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    out = apply_rope(x, *rope(pos))
    torch.testing.assert_close(out[..., :4], rotate(x[..., :4], pos[0, :, 0]))
    assert torch.equal(out[..., 4:], x[..., 4:])
    out = apply_rope(x, *rope(torch.full((1, 3, 3), 5.0)))
    assert torch.equal(out[..., 12:], x[..., 12:])


# ---------------------------------------------------------------- predictors
@pytest.mark.parametrize("pos_embed", ["sincos", "rope"])
def test_masked_predictor_shapes_and_ijepa_layout(pos_embed):
    """One context row per sample serves every target block (projected once, then repeated)."""
    predictor = MaskedPredictor(
        48, 32, 2, 2, img_size=32, patch_size=8, zero_init_mask_tokens=False, pos_embed=pos_embed
    ).eval()
    context, keep_ctx = torch.randn(2, 6, 48), torch.arange(6).repeat(2, 1)
    targets = [torch.arange(6, 9).repeat(2, 1), torch.arange(10, 14).repeat(2, 1)[:, :3]]
    out = predictor(context, keep_ctx, torch.cat(targets))
    assert out.shape == (4, 3, 48)  # row j*B + b
    with torch.no_grad():
        torch.testing.assert_close(out[2:], predictor(context, keep_ctx, targets[1]))
    with pytest.raises(ValueError, match="not a multiple"):
        predictor(context, keep_ctx, torch.cat(targets)[:3])


@pytest.mark.parametrize("pos_embed", ["sincos", "rope"])
def test_masked_predictor_ignores_context_order(pos_embed):
    """Without an attention mask the predictor is permutation-equivariant: V-JEPA 2's sort is not needed."""
    predictor = MaskedPredictor(
        48, 36, 2, 2, img_size=32, patch_size=8, num_frames=4, num_mask_tokens=2, pos_embed=pos_embed
    ).eval()
    for token in predictor.mask_tokens:
        torch.nn.init.normal_(token)
    ids = torch.randperm(32)
    keep_ctx, keep_tgt = ids[:20].sort().values[None], ids[20:].sort().values[None]
    context = torch.randn(1, 20, 48)
    perm = torch.randperm(20)
    with torch.no_grad():
        out = predictor(context, keep_ctx, keep_tgt, mask_index=1)
        torch.testing.assert_close(
            predictor(context[:, perm], keep_ctx[:, perm], keep_tgt, mask_index=1), out, atol=1e-5, rtol=0
        )
        assert not torch.allclose(predictor(context, keep_ctx, keep_tgt, mask_index=0), out)


def test_block_causal_mask():
    mask = block_causal_mask(3, 4)
    step = torch.arange(3).repeat_interleave(4)
    assert mask.shape == (12, 12)
    assert not (mask & (step[None, :] > step[:, None])).any()  # nothing from the future
    assert mask[step[:, None] >= step[None, :]].all()  # everything from the past and the same step


@pytest.mark.parametrize("grid", [None, (1, 1)])
def test_ac_predictor_is_causal_in_time(grid):
    model = ActionConditionedPredictor(48, 32, 2, 2, img_size=32, patch_size=8).eval()
    per_frame = 16 if grid is None else 1
    z, actions, states = torch.randn(2, 3 * per_frame, 48), torch.randn(2, 3, 7), torch.randn(2, 3, 7)
    with torch.no_grad():
        out = model(z, actions, states, grid=grid)
        assert out.shape == z.shape
        z2, actions2 = z.clone(), actions.clone()
        z2[:, 2 * per_frame :] += 1.0
        actions2[:, 2] += 1.0
        out2 = model(z2, actions2, states, grid=grid)
        torch.testing.assert_close(out2[:, : 2 * per_frame], out[:, : 2 * per_frame])  # steps 0, 1 unchanged
        assert not torch.allclose(out2[:, 2 * per_frame :], out[:, 2 * per_frame :])
        # a shorter sequence gives the same predictions for its steps (rollout can grow T)
        torch.testing.assert_close(
            model(z[:, :per_frame], actions[:, :1], states[:, :1], grid=grid), out[:, :per_frame]
        )


def test_ac_predictor_rejects_mismatched_steps():
    model = ActionConditionedPredictor(48, 32, 1, 2, img_size=32, patch_size=8)
    with pytest.raises(UserError, match="one per frame"):
        model(torch.randn(1, 32, 48), torch.randn(1, 3, 7), torch.randn(1, 2, 7))


# ---------------------------------------------------------------- official loader
def test_official_loader_reports_keys():
    encoder = tiny_vit()
    state = {"module." + k: v for k, v in encoder.state_dict().items()}
    load_official_state(tiny_vit(), state)  # round trip
    del state["module.norm.bias"]
    state["module.extra.weight"] = torch.zeros(1)
    with pytest.raises(UserError, match=r"missing keys: norm\.bias; unexpected keys: extra\.weight"):
        load_official_state(tiny_vit(), state)


def test_official_loader_maps_ijepa_mask_token_and_drops_unused_tables():
    predictor = MaskedPredictor(48, 32, 1, 2, img_size=32, patch_size=8, pos_embed="rope")
    state = {"module.backbone." + k: v for k, v in predictor.state_dict().items()}
    state["module.backbone.mask_token"] = state.pop("module.backbone.mask_tokens.0") + 1
    state["module.backbone.predictor_pos_embed"] = torch.zeros(1, 16, 32)
    load_official_state(predictor, state)
    assert torch.equal(predictor.mask_tokens[0], torch.ones(1, 1, 32))
