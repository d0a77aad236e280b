"""Probes and frozen evaluation: each probe learns what it should, features are computed once."""

import pytest
import torch
from torch import nn

from worldjepa.data.images import ShapesDataset
from worldjepa.errors import UserError
from worldjepa.eval.frozen import FeatureSet, ProbeConfig, compare_encoders, extract_features, train_probe
from worldjepa.nn.probes import AttentiveProbe, LinearProbe


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny probes train faster on one thread than on two busy ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class PatchEncoder(nn.Module):
    """Stand-in for the ViT on 16x16 images: 4x4 patches -> linear, GELU, + position embedding ->
    tokens [B, 16, D]; counts its calls."""

    num_heads = 2

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Conv2d(3, dim, kernel_size=4, stride=4)
        self.pos = nn.Parameter(torch.randn(1, 16, dim))
        self.calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return nn.functional.gelu(self.proj(images).flatten(2).transpose(1, 2)) + self.pos


class BlindEncoder(PatchEncoder):
    """An encoder that ignores its input: the floor any useful encoder must beat."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.zeros_like(images))


def gaussian_classes(num: int, seed: int) -> FeatureSet:
    """Tokens [num, 4, 16] around one of 5 well-separated class means: linearly separable."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(5, 16, generator=torch.Generator().manual_seed(99)) * 2
    labels = torch.randint(5, (num,), generator=g)
    return FeatureSet(means[labels].unsqueeze(1) + 0.5 * torch.randn(num, 4, 16, generator=g), labels)


def marked_token(num: int, seed: int) -> FeatureSet:
    """Every token shows a random class (one-hot); the label is the class of the one flagged token,
    at a random position. Mean pooling sees only a histogram of classes; attention can read the flag."""
    g = torch.Generator().manual_seed(seed)
    classes = torch.randint(4, (num, 8), generator=g)
    tokens = 0.1 * torch.randn(num, 8, 16, generator=g)
    tokens[..., :4] += nn.functional.one_hot(classes, 4).float()
    flagged = torch.randint(8, (num,), generator=g)
    tokens[torch.arange(num), flagged, 4] += 3.0
    return FeatureSet(tokens, classes[torch.arange(num), flagged])


def test_probe_output_shapes_and_head_check():
    tokens = torch.randn(3, 7, 16)
    assert LinearProbe(16, 5)(tokens).shape == (3, 5)
    assert LinearProbe(16, 5)(tokens.mean(1)).shape == (3, 5)
    assert AttentiveProbe(16, 4, 2)(tokens).shape == (3, 2)
    with pytest.raises(UserError, match="not divisible by 3 heads"):
        AttentiveProbe(16, 3, 2)


def test_linear_probe_separates_separable_classes():
    result = train_probe(
        gaussian_classes(400, 0),
        gaussian_classes(200, 1),
        ProbeConfig("linear", epochs=10, lr=1e-2, batch_size=32),
    )
    assert result.metric_name == "accuracy" and result.test_metric >= 0.98


def test_attentive_probe_reads_the_one_token_that_holds_the_answer():
    train, test = marked_token(256, 0), marked_token(256, 1)
    attentive = train_probe(
        train, test, ProbeConfig("attentive", epochs=20, lr=1e-2, batch_size=32), num_heads=2
    )
    linear = train_probe(train, test, ProbeConfig("linear", epochs=20, lr=1e-2, batch_size=32))
    assert attentive.test_metric >= 0.95
    assert linear.test_metric < 0.7


def test_deeper_probe_runs_self_attention_blocks_first_and_still_reads_the_marked_token():
    probe = AttentiveProbe(16, 2, 4, depth=4)  # V-JEPA 2's probe: 3 self-attention blocks, then the query
    assert len(probe.blocks) == 3
    train, test = marked_token(256, 0), marked_token(256, 1)
    protocol = ProbeConfig("attentive", epochs=40, lr=1e-3, batch_size=32, depth=4)
    assert train_probe(train, test, protocol, num_heads=2).test_metric >= 0.95
    with pytest.raises(UserError, match="depth must be >= 1"):
        AttentiveProbe(16, 2, 4, depth=0)
    with pytest.raises(UserError, match="probe.depth must be >= 1"):
        ProbeConfig("attentive", depth=0)


def test_linear_regression_target_gives_r2_near_one_and_runs_are_deterministic():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(300, 4, 16, generator=g)
    targets = tokens.mean(1) @ torch.randn(16, 2, generator=g) * 5 + 3
    labels = torch.zeros(300, dtype=torch.long)
    train = FeatureSet(tokens[:200], labels[:200], targets[:200])
    test = FeatureSet(tokens[200:], labels[200:], targets[200:])
    protocol = ProbeConfig("linear", "regression", epochs=40, lr=1e-2, batch_size=32)
    result = train_probe(train, test, protocol)
    assert result.metric_name == "r2" and result.test_metric > 0.98
    again = train_probe(train, test, protocol)
    assert again == result


def test_wrong_probe_settings_are_user_errors():
    features = gaussian_classes(8, 0)
    with pytest.raises(UserError, match="needs regression targets"):
        train_probe(features, features, ProbeConfig("linear", "regression"))
    with pytest.raises(UserError, match="unknown probe kind 'svm'"):
        ProbeConfig("svm")
    with pytest.raises(UserError, match="pool=False"):
        train_probe(
            FeatureSet(features.features.mean(1), features.labels), features, ProbeConfig("attentive")
        )


def test_extract_features_runs_the_encoder_once_and_reuses_the_cache(tmp_path):
    data = ShapesDataset(num_images=20, image_size=16)
    encoder = PatchEncoder().train()
    cache = tmp_path / "features.pt"
    features = extract_features(encoder, data, batch_size=8, cache_path=cache)
    assert features.features.shape == (20, 16, 16) and features.targets.shape == (20, 3)
    assert torch.equal(features.labels, data.labels)
    assert encoder.calls == 3 and encoder.training  # 3 batches; the caller's mode is restored
    cached = extract_features(encoder, data, batch_size=8, cache_path=cache)
    assert encoder.calls == 3 and torch.equal(cached.features, features.features)
    with torch.no_grad():
        encoder.proj.bias.add_(1.0)  # new weights: the cache is stale
    extract_features(encoder, data, batch_size=8, cache_path=cache)
    assert encoder.calls == 6
    pooled = extract_features(encoder, data, batch_size=8, pool=True)
    assert pooled.features.shape == (20, 16)


def test_compare_encoders_shows_the_useful_encoder_ahead():
    train, test = (
        ShapesDataset(num_images=160, image_size=16),
        ShapesDataset(image_size=16, num_images=80, train=False),
    )
    comparison = compare_encoders(
        PatchEncoder(),
        BlindEncoder(),
        train,
        test,
        ProbeConfig("linear", epochs=30, lr=1e-2, batch_size=32),
    )
    assert comparison.pretrained.test_metric > comparison.random_init.test_metric + 0.1
    table = comparison.table().splitlines()
    assert len(table) == 3 and "test accuracy" in table[0]
    assert table[1].startswith("pretrained") and table[2].startswith("random init")
