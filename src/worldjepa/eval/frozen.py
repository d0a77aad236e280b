"""Frozen evaluation: train a probe on a frozen encoder's tokens and report its accuracy or R^2.

The encoder runs once per dataset (`extract_features`); every probe epoch then reads the cached
features, so a probe trains in seconds. `compare_encoders` runs the same protocol on a pretrained
and a randomly initialised encoder: the gap is what pretraining learned.

Encoder interface: `encoder(x) -> tokens [B, N, D]` for images [B, 3, H, W] or videos
[B, 3, T, H, W]; an optional `num_heads` attribute gives the attentive probe its head count.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from worldjepa.errors import UserError
from worldjepa.nn.probes import AttentiveProbe, LinearProbe

PROBE_KINDS = ("linear", "attentive")
TASKS = ("classification", "regression")


@dataclass
class ProbeConfig:
    """The `probe:` section of a pretraining preset (`worldjepa probe`): the frozen-evaluation protocol.

    kind: linear (on mean-pooled tokens) | attentive (V-JEPA's cross-attention probe on every token);
    task: classification (accuracy) | regression (R^2) of the built-in evaluation set's labels;
    depth: the attentive probe's blocks (1: V-JEPA's single cross-attention; 4: V-JEPA 2's, three
    self-attention blocks on the tokens first).
    """

    kind: Literal["linear", "attentive"] = "attentive"
    task: Literal["classification", "regression"] = "classification"
    depth: int = 1
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 128

    def __post_init__(self) -> None:
        _check_kind_and_task(self.kind, self.task)
        if min(self.epochs, self.batch_size, self.depth) < 1:
            raise UserError(
                "probe.epochs, probe.batch_size and probe.depth must be >= 1, got "
                f"{self.epochs}, {self.batch_size}, {self.depth}"
            )


@dataclass
class FeatureSet:
    """A frozen encoder's outputs for a whole dataset, with the dataset's labels and targets."""

    features: torch.Tensor  # [M, N, D] tokens, or [M, D] when mean-pooled
    labels: torch.Tensor  # [M] int64
    targets: torch.Tensor | None = None  # [M, R] regression targets, if the dataset has them


@dataclass(frozen=True)
class ProbeResult:
    """One probe's score on the data it trained on and on held-out data."""

    metric_name: str  # "accuracy" (fraction correct) or "r2" (mean over target dimensions)
    train_metric: float
    test_metric: float
    #: held-out predictions (regression, in the targets' units) or logits; not part of equality or repr
    test_outputs: torch.Tensor | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class EncoderComparison:
    """The same probe protocol on a pretrained and a randomly initialised encoder."""

    pretrained: ProbeResult
    random_init: ProbeResult

    def table(self) -> str:
        """A plain-text table, one row per encoder."""
        name = self.pretrained.metric_name
        lines = [f"{'encoder':<12} {'train ' + name:>16} {'test ' + name:>16}"]
        for label, result in (("pretrained", self.pretrained), ("random init", self.random_init)):
            lines.append(f"{label:<12} {result.train_metric:>16.3f} {result.test_metric:>16.3f}")
        return "\n".join(lines)


def _model_input(item: dict) -> torch.Tensor:
    """The encoder input of a dataset item: its video [3, T, H, W] or its image [3, H, W]."""
    return item["video"] if "video" in item else item["image"]


def _fingerprint(encoder: nn.Module, dataset: Dataset, pool: bool) -> str:
    """Hash of the encoder weights and the dataset (type, length, first input): a cache key."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    digest.update(f"{type(dataset).__name__}|{len(dataset)}|{pool}".encode())
    digest.update(_model_input(dataset[0]).contiguous().numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def extract_features(
    encoder: nn.Module,
    dataset: Dataset,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    pool: bool = False,
    cache_path: str | Path | None = None,
) -> FeatureSet:
    """Run the frozen encoder (eval mode, no gradients) over the evaluation view of every example.

    The encoder is moved to `device`; features come back on the CPU, mean-pooled to [M, D] if `pool`
    (enough for a linear probe, N times less memory). With `cache_path`, a file saved by an earlier
    call is reused when the encoder weights and the dataset match, so repeated probing of one
    checkpoint skips the encoder entirely; use one path per dataset.
    """
    fingerprint = _fingerprint(encoder, dataset, pool) if cache_path is not None else None
    if cache_path is not None and Path(cache_path).is_file():
        saved = torch.load(cache_path, weights_only=True)
        if saved.get("fingerprint") == fingerprint:
            return FeatureSet(saved["features"], saved["labels"], saved["targets"])

    was_training = encoder.training
    encoder.to(device).eval()
    features, labels, targets = [], [], []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        tokens = encoder(torch.stack([_model_input(item) for item in items]).to(device))  # [B, N, D]
        features.append((tokens.mean(dim=1) if pool else tokens).float().cpu())
        labels.extend(item["label"] for item in items)
        if "target" in items[0]:
            targets.extend(item["target"] for item in items)
    encoder.train(was_training)

    result = FeatureSet(
        torch.cat(features), torch.tensor(labels, dtype=torch.long), torch.stack(targets) if targets else None
    )
    if cache_path is not None:
        Path(cache_path).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"fingerprint": fingerprint, **vars(result)}, cache_path)
    return result


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(dim=1) == labels).float().mean().item()


def _r2(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Coefficient of determination per target dimension [M, R], averaged over dimensions."""
    residual = (targets - predictions).pow(2).sum(dim=0)
    total = (targets - targets.mean(dim=0)).pow(2).sum(dim=0).clamp_min(1e-12)
    return (1 - residual / total).mean().item()


def _check_kind_and_task(kind: str, task: str) -> None:
    if kind not in PROBE_KINDS:
        raise UserError(f"unknown probe kind {kind!r}; use one of {', '.join(PROBE_KINDS)}")
    if task not in TASKS:
        raise UserError(f"unknown probe task {task!r}; use one of {', '.join(TASKS)}")


def _check_inputs(train: FeatureSet, kind: str, task: str) -> None:
    _check_kind_and_task(kind, task)
    if task == "regression" and train.targets is None:
        raise UserError(
            "task 'regression' needs regression targets but the dataset has none; use task "
            "'classification' or a dataset with targets (ShapesDataset, SyntheticVideoDataset)"
        )
    if kind == "attentive" and train.features.dim() != 3:
        raise UserError("the attentive probe needs tokens [M, N, D]; extract the features with pool=False")


@torch.no_grad()
def _predict(
    probe: nn.Module, features: torch.Tensor, batch_size: int, device: str | torch.device
) -> torch.Tensor:
    probe.eval()
    outputs = [
        probe(features[i : i + batch_size].to(device)).cpu() for i in range(0, len(features), batch_size)
    ]
    return torch.cat(outputs)


def train_probe(
    train: FeatureSet,
    test: FeatureSet,
    protocol: ProbeConfig,
    num_heads: int = 1,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> ProbeResult:
    """Train a probe on cached features with AdamW and a cosine learning-rate decay; score both splits.

    Classification uses cross-entropy and reports accuracy; regression fits standardized targets with
    a squared error and reports R^2 on the original scale. Initialisation and batch order come from
    `seed` only (the global RNG is left untouched), so a run is deterministic.
    """
    kind, task, batch_size = protocol.kind, protocol.task, protocol.batch_size
    _check_inputs(train, kind, task)
    x_train, x_test = train.features, test.features
    if kind == "linear" and x_train.dim() == 3:  # pool once instead of every epoch: same result
        x_train, x_test = x_train.mean(dim=1), x_test.mean(dim=1)

    if task == "classification":
        y_train = train.labels
        num_outputs = int(torch.cat([train.labels, test.labels]).max()) + 1
    else:
        mean, std = train.targets.mean(dim=0), train.targets.std(dim=0).clamp_min(1e-8)
        y_train = (train.targets - mean) / std
        num_outputs = train.targets.shape[1]

    dim = x_train.shape[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = (
            LinearProbe(dim, num_outputs)
            if kind == "linear"
            else AttentiveProbe(dim, num_heads, num_outputs, depth=protocol.depth)
        )
    probe.to(device)
    x_train_dev, y_train_dev = x_train.to(device), y_train.to(device)

    steps_per_epoch = max(len(x_train) // batch_size, 1)  # drop the ragged batch: BatchNorm needs B > 1
    total_steps = protocol.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(probe.parameters(), lr=protocol.lr, weight_decay=protocol.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps))
    )
    loss_fn = F.cross_entropy if task == "classification" else F.mse_loss
    order = torch.Generator().manual_seed(seed)
    for _ in range(protocol.epochs):
        probe.train()
        permutation = torch.randperm(len(x_train), generator=order)
        for step in range(steps_per_epoch):
            idx = permutation[step * batch_size : (step + 1) * batch_size].to(device)
            loss = loss_fn(probe(x_train_dev[idx]), y_train_dev[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()

    train_out = _predict(probe, x_train, batch_size, device)
    test_out = _predict(probe, x_test, batch_size, device)
    if task == "classification":
        return ProbeResult(
            "accuracy", _accuracy(train_out, train.labels), _accuracy(test_out, test.labels), test_out
        )
    test_out = test_out * std + mean
    return ProbeResult(
        "r2", _r2(train_out * std + mean, train.targets), _r2(test_out, test.targets), test_out
    )


def compare_encoders(
    pretrained: nn.Module,
    random_init: nn.Module,
    train_set: Dataset,
    test_set: Dataset,
    protocol: ProbeConfig,
    num_heads: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> EncoderComparison:
    """Probe a pretrained and a randomly initialised encoder with the same protocol and seed.

    `num_heads` defaults to the encoder's `num_heads` attribute (V-JEPA: probe heads = encoder heads),
    or 1 if it has none.
    """
    results = []
    for encoder in (pretrained, random_init):
        pool = protocol.kind == "linear"
        train = extract_features(encoder, train_set, protocol.batch_size, device, pool=pool)
        test = extract_features(encoder, test_set, protocol.batch_size, device, pool=pool)
        heads = num_heads or getattr(encoder, "num_heads", 1)
        results.append(train_probe(train, test, protocol, heads, seed, device))
    return EncoderComparison(*results)
