"""Parity with Hugging Face transformers' IJepaModel and VJEPA2Model (random tiny configs).

The Hugging Face weights are renamed into our layout in memory (q, k, v merged into one qkv Linear)
and both models run on the same input; outputs must agree to 1e-5 in float32.
"""

import re

import pytest
import torch
from torch import Tensor

from worldjepa.nn.predictor import MaskedPredictor
from worldjepa.nn.vit import VisionTransformer, gather_tokens

transformers = pytest.importorskip("transformers")

ATOL = 1e-5

IJEPA_NAMES = [
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^embeddings\.position_embeddings$", "pos_embed"),
    (r"^layers\.(\d+)\.attention\.o_proj\.", r"blocks.\1.attn.proj."),
    (r"^layers\.(\d+)\.attention\.([qkv])_proj\.", r"blocks.\1.attn.\2."),
    (r"^layers\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
    (r"^layers\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
    (r"^layers\.(\d+)\.mlp\.", r"blocks.\1.mlp."),
    (r"^layernorm\.", "norm."),
]
VJEPA2_NAMES = [
    (r"^encoder\.embeddings\.patch_embeddings\.proj\.", "patch_embed.proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.(query|key|value)\.", r"blocks.\1.attn.\2."),
    (r"^encoder\.layer\.(\d+)\.attention\.proj\.", r"blocks.\1.attn.proj."),
    (r"^encoder\.layer\.(\d+)\.", r"blocks.\1."),
    (r"^encoder\.layernorm\.", "norm."),
    (r"^predictor\.embeddings\.predictor_embeddings\.", "predictor_embed."),
    (r"^predictor\.layer\.(\d+)\.attention\.(query|key|value)\.", r"predictor_blocks.\1.attn.\2."),
    (r"^predictor\.layer\.(\d+)\.attention\.proj\.", r"predictor_blocks.\1.attn.proj."),
    (r"^predictor\.layer\.(\d+)\.", r"predictor_blocks.\1."),
    (r"^predictor\.layernorm\.", "predictor_norm."),
    (r"^predictor\.proj\.", "predictor_proj."),
]


QKV_INDEX = {"q": 0, "k": 1, "v": 2, "query": 0, "key": 1, "value": 2}


def convert(state: dict[str, Tensor], names: list[tuple[str, str]]) -> dict[str, Tensor]:
    """Rename keys by the first matching rule (others are dropped), then merge q, k, v into one qkv."""
    out, qkv = {}, {}
    for key, value in state.items():
        rule = next(((p, r) for p, r in names if re.search(p, key)), None)
        if rule is None:
            continue
        new = re.sub(*rule, key)
        part = re.fullmatch(r"(.*attn\.)(q|k|v|query|key|value)\.(weight|bias)", new)
        if part:
            qkv.setdefault(f"{part[1]}qkv.{part[3]}", [None] * 3)[QKV_INDEX[part[2]]] = value
        else:
            out[new] = value
    return out | {key: torch.cat(parts) for key, parts in qkv.items()}


def perturb_norms(model: torch.nn.Module) -> None:
    """Make LayerNorm affine parameters non-trivial so a swapped norm would show."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.add_(0.1 * torch.randn_like(m.weight))
                m.bias.add_(0.1 * torch.randn_like(m.bias))


def test_ijepa_encoder_matches_hf():
    torch.manual_seed(0)
    config = transformers.IJepaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        image_size=16,
        patch_size=4,
        layer_norm_eps=1e-6,
    )
    hf = transformers.IJepaModel(config, add_pooling_layer=False).eval()
    perturb_norms(hf)
    ours = VisionTransformer(img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=4).eval()
    ours.load_state_dict(convert(hf.state_dict(), IJEPA_NAMES), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(pixel_values=x).last_hidden_state, atol=ATOL, rtol=0)


@pytest.fixture(scope="module")
def vjepa2():
    torch.manual_seed(0)
    config = transformers.VJEPA2Config(
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        crop_size=32,
        patch_size=8,
        frames_per_clip=4,
        tubelet_size=2,
        pred_hidden_size=32,
        pred_num_hidden_layers=2,
        pred_num_attention_heads=2,
        pred_num_mask_tokens=2,
        layer_norm_eps=1e-6,
    )
    hf = transformers.VJEPA2Model(config).eval()
    perturb_norms(hf)
    with torch.no_grad():
        hf.predictor.embeddings.mask_tokens.normal_()
    common = dict(img_size=32, patch_size=8, num_frames=4, tubelet_size=2, pos_embed="rope", rope_compat=True)
    encoder = VisionTransformer(embed_dim=48, depth=2, num_heads=2, **common).eval()
    predictor = MaskedPredictor(48, 32, depth=2, num_heads=2, num_mask_tokens=2, **common).eval()
    state = convert(hf.state_dict(), VJEPA2_NAMES)
    state |= {
        f"mask_tokens.{i}": token for i, token in enumerate(hf.predictor.embeddings.mask_tokens.detach())
    }
    encoder.load_state_dict({k: v for k, v in state.items() if k in encoder.state_dict()}, strict=True)
    predictor.load_state_dict({k: v for k, v in state.items() if k in predictor.state_dict()}, strict=True)
    return hf, encoder, predictor


def test_vjepa2_encoder_and_predictor_match_hf(vjepa2):
    hf, encoder, predictor = vjepa2
    video = torch.randn(2, 3, 4, 32, 32)  # ours: [B, C, T, H, W]; Hugging Face: [B, T, C, H, W]
    ids = torch.stack([torch.randperm(32) for _ in range(2)])
    keep_ctx, keep_tgt = ids[:, :20].sort().values, ids[:, 20:].sort().values
    with torch.no_grad():
        out = hf(pixel_values_videos=video.transpose(1, 2), context_mask=[keep_ctx], target_mask=[keep_tgt])
        tokens = encoder(video)
        torch.testing.assert_close(tokens, out.last_hidden_state, atol=ATOL, rtol=0)
        # Hugging Face always uses mask token 1 (its default mask_index)
        prediction = predictor(gather_tokens(tokens, keep_ctx), keep_ctx, keep_tgt, mask_index=1)
        torch.testing.assert_close(prediction, out.predictor_output.last_hidden_state, atol=ATOL, rtol=0)
