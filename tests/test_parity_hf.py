"""Parity with Hugging Face transformers' IJepaModel and VJEPA2Model (random tiny configs).

The Hugging Face models are converted with worldjepa.interop.from_hf (q, k, v merged into one qkv
Linear, mask tokens unstacked) and both run on the same input; outputs must agree to 1e-5 in float32.
"""

import pytest
import torch

from worldjepa.interop import architecture_of, from_hf
from worldjepa.nn.vit import gather_tokens

transformers = pytest.importorskip("transformers")

ATOL = 1e-5


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
    ours = from_hf(hf)["encoder"]
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
    modules = from_hf(hf)
    return hf, modules["encoder"], modules["predictor"]


def run_both(hf, encoder, predictor):
    torch.manual_seed(1)
    video = torch.randn(2, 3, 4, 32, 32)  # ours: [B, C, T, H, W]; Hugging Face: [B, T, C, H, W]
    ids = torch.stack([torch.randperm(32) for _ in range(2)])
    keep_ctx, keep_tgt = ids[:, :20].sort().values, ids[:, 20:].sort().values
    with torch.no_grad():
        out = hf(pixel_values_videos=video.transpose(1, 2), context_mask=[keep_ctx], target_mask=[keep_tgt])
        tokens = encoder(video)
        # Hugging Face always uses mask token 1 (its default mask_index)
        prediction = predictor(gather_tokens(tokens, keep_ctx), keep_ctx, keep_tgt, mask_index=1)
    return (tokens, prediction), (out.last_hidden_state, out.predictor_output.last_hidden_state)


def test_vjepa2_encoder_and_predictor_match_hf(vjepa2):
    hf, encoder, predictor = vjepa2
    assert encoder.rope.compat and predictor.rope.compat  # HF's rotation is the released weights' one
    (tokens, prediction), (hf_tokens, hf_prediction) = run_both(hf, encoder, predictor)
    torch.testing.assert_close(tokens, hf_tokens, atol=ATOL, rtol=0)
    torch.testing.assert_close(prediction, hf_prediction, atol=ATOL, rtol=0)


def test_hf_vjepa2_is_the_compat_rotation_not_the_clean_one(vjepa2):
    """The same weights with the clean rotation (rope_compat=False) do not reproduce Hugging Face.

    (Checked on the encoder: this random predictor attends almost uniformly, so its rotation barely shows.)
    """
    hf, encoder, predictor = vjepa2
    clean = [architecture_of(m).override(rope_compat=False).build().eval() for m in (encoder, predictor)]
    for model, source in zip(clean, (encoder, predictor), strict=True):
        model.load_state_dict(source.state_dict())
    (tokens, _), (hf_tokens, _) = run_both(hf, *clean)
    assert (tokens - hf_tokens).abs().max() > 1e-3
