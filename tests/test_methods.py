"""I-JEPA and V-JEPA training steps, collapse regularizers, and a tiny pretrain + probe run."""

import pytest
import torch

from worldjepa.data.datasets import build_dataset
from worldjepa.errors import UserError
from worldjepa.methods.regularizers import RegularizerConfig, collapse_regularizer, sigreg, vicreg_variance
from worldjepa.methods.vjepa import context_weights, motion_weights
from worldjepa.models import build_mask_collator, build_method
from worldjepa.nn.vit import grid_positions
from worldjepa.presets import PretrainPreset, load_config
from worldjepa.stages.pretrain import run_pretrain
from worldjepa.stages.probe import run_probe
from worldjepa.train.checkpoint import load_checkpoint

TINY_MODEL = ["model.embed_dim=32", "model.depth=2", "model.num_heads=2", "model.predictor_embed_dim=16",
              "model.predictor_depth=1", "model.predictor_num_heads=2"]  # fmt: skip


def tiny_cfg(preset: str, *extra: str) -> PretrainPreset:
    size = ["data.num_frames=4", "data.image_size=16"] if preset != "ijepa_tiny" else ["data.image_size=32"]
    return load_config(preset, [*TINY_MODEL, "data.num_train=64", "data.num_test=32", *size, *extra])


def batch_for(cfg: PretrainPreset, size: int = 8) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    method = build_method(cfg)
    dataset = build_dataset(cfg.data, cfg.video, train=True)
    collate = build_mask_collator(cfg.masks, method.encoder)
    samples = [{**dataset.sample(i, torch.Generator().manual_seed(i)), "seed": i} for i in range(size)]
    return method, collate(samples)


@pytest.mark.parametrize("preset", ["ijepa_tiny", "vjepa_tiny", "vjepa2_tiny"])
def test_step_trains_context_encoder_and_predictor_only(preset):
    method, batch = batch_for(tiny_cfg(preset))
    out = method(batch)
    out.loss.backward()
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert all(p.grad is None for p in method.target_encoder.parameters())
    assert all(p.grad is not None for p in method.encoder.blocks.parameters())
    assert all(p.grad is not None for p in method.predictor.predictor_blocks.parameters())
    assert out.embeddings.shape == (8, 32)


def test_ijepa_loss_is_smooth_l1_on_layer_normed_targets_of_every_block():
    method, batch = batch_for(tiny_cfg("ijepa_tiny"))
    method.eval()
    h = torch.nn.functional.layer_norm(method.target_encoder(batch["image"]), (32,))
    z = method.encoder(batch["image"], keep=batch["context"])
    expected = []
    for block in batch["targets"]:  # one prediction per target block, as in the paper
        pred = method.predictor(z, batch["context"], block)
        target = torch.gather(h, 1, block.unsqueeze(-1).expand(-1, -1, 32))
        expected.append(torch.nn.functional.smooth_l1_loss(pred, target, reduction="sum"))
    total = sum(expected) / (batch["targets"].numel() * 32)
    torch.testing.assert_close(method(batch).metrics["prediction_loss"], total, rtol=1e-5, atol=1e-6)


def test_vjepa_uses_one_mask_token_per_generator():
    method, batch = batch_for(tiny_cfg("vjepa_tiny"))
    assert len(method.predictor.mask_tokens) == len(batch["context"]) == 2
    out = method(batch)
    out.loss.backward()
    assert all(
        token.grad is not None and token.grad.abs().sum() > 0 for token in method.predictor.mask_tokens
    )
    per_generator = torch.stack([out.metrics["loss_generator0"], out.metrics["loss_generator1"]])
    torch.testing.assert_close(out.metrics["prediction_loss"], per_generator.mean())


def test_context_weights_are_one_over_sqrt_spatial_distance_to_the_nearest_target():
    grid = (2, 2, 8)  # (t, h, w): token t * 16 + h * 8 + w; masks are tubes, so distance is in (h, w)
    target = torch.tensor([[0, 0], [15, 31]])  # (h, w) = (0, 0); (1, 7) in frames 0 and 1
    context = torch.tensor([[1, 4, 16 + 1, 8 + 4], [14, 11, 16 + 7, 0]])
    # distances row 0: 1, 4, 1 (frame 1, same place + 1), sqrt(1 + 16); row 1: 1, 4, 1, sqrt(1 + 49)
    expected = torch.tensor([[1.0, 0.5, 1.0, 17**-0.25], [1.0, 0.5, 1.0, 50**-0.25]])
    torch.testing.assert_close(context_weights(context, target, grid), expected)


def test_vjepa21_dense_loss_adds_the_weighted_context_error_as_it_warms_up():
    plain, batch = batch_for(tiny_cfg("vjepa2_tiny"))
    dense_cfg = tiny_cfg("vjepa2_tiny", "vjepa21.context_loss_weight=0.5", "vjepa21.context_loss_warmup=0.5")
    dense, _ = batch_for(dense_cfg)
    dense.load_state_dict({**plain.state_dict(), "progress": torch.zeros(())})
    assert "progress" in dense.state_dict()  # the warm-up's clock is checkpointed: resume continues it
    reference = plain(batch)
    out = dense(batch)  # progress 0: the context term is there but weighs nothing yet
    torch.testing.assert_close(out.metrics["prediction_loss"], reference.metrics["prediction_loss"])
    torch.testing.assert_close(out.loss, reference.loss)
    assert out.metrics["context_loss"] > 0
    for progress, weight in ((0.25, 0.25), (0.9, 0.5)):  # ramps to 0.5 over the first half, then stays
        dense.after_optimizer_step(progress)
        out = dense(batch)
        torch.testing.assert_close(
            out.loss, out.metrics["prediction_loss"] + weight * out.metrics["context_loss"]
        )
    # the context term: the predictor's outputs at the context positions against the targets there
    h, grid = dense.targets(batch["video"]), dense.encoder.grid
    expected = []
    for index, (context, target) in enumerate(zip(batch["context"], batch["targets"], strict=True)):
        z = dense.encoder(batch["video"], keep=context)
        at_context = dense.predictor(z, context, target, index, return_context=True)[:, : context.shape[1]]
        error = (at_context - torch.gather(h, 1, context[..., None].expand(-1, -1, 32))).abs().mean(-1)
        expected.append((context_weights(context, target, grid) * error).mean())
    torch.testing.assert_close(out.metrics["context_loss"], torch.stack(expected).mean())


def test_motion_weights_count_the_places_that_change_more():
    """Two frames of three places: place 0 the same in both, place 1 a little different, place 2 more; with
    alpha 2 the weights are 1 + 2 x change / mean change, normalised to mean 1, the same in both frames."""
    h = torch.zeros(1, 6, 4)
    h[0, 4], h[0, 5] = 1.0, 2.0  # frame 1 differs from frame 0 at places 1 and 2
    change = torch.tensor([0.0, 0.5, 1.0])  # |token - its mean over the two frames|
    weights = 1 + 2 * change / change.mean()
    expected = (weights / weights.mean()).repeat(2)[None]
    torch.testing.assert_close(motion_weights(h, 2, 2.0), expected)
    torch.testing.assert_close(motion_weights(torch.zeros(1, 6, 4), 2, 2.0), torch.ones(1, 6))  # still: all 1


def test_motion_weighted_loss_weighs_each_target_token_by_its_place_s_change():
    plain, batch = batch_for(tiny_cfg("vjepa2_tiny"))
    weighted, _ = batch_for(tiny_cfg("vjepa2_tiny", "motion_weight=3.0"))
    weighted.load_state_dict(plain.state_dict())
    h = plain.targets(batch["video"])
    weights = motion_weights(h, plain.encoder.grid[0], 3.0)
    expected = []
    for index, (context, target) in enumerate(zip(batch["context"], batch["targets"], strict=True)):
        prediction = plain.predictor(plain.encoder(batch["video"], keep=context), context, target, index)
        error = (prediction - torch.gather(h, 1, target[..., None].expand(-1, -1, 32))).abs().mean(-1)
        expected.append((torch.gather(weights, 1, target) * error).mean())
    out = weighted(batch)
    torch.testing.assert_close(out.loss, torch.stack(expected).mean())
    assert not torch.allclose(out.loss, plain(batch).loss)
    for preset, bad in (("vjepa2_tiny", "motion_weight=-1.0"), ("ijepa_tiny", "motion_weight=1.0")):
        with pytest.raises(UserError, match="motion_weight"):
            tiny_cfg(preset, bad)


def test_vjepa21_deep_supervision_predicts_every_level():
    method, batch = batch_for(tiny_cfg("vjepa2_tiny", "vjepa21.levels=[1]"))  # a 2-block encoder
    video = batch["video"]
    both = method.encoder(video, levels=(1,))
    assert both.shape[-1] == 64
    torch.testing.assert_close(both[..., 32:], method.encoder(video))  # the last level is the usual output
    x = method.encoder.patch_embed(video)
    rope = method.encoder.rope(grid_positions(None, method.encoder.grid, x.device), x.dtype)
    torch.testing.assert_close(both[..., :32], method.encoder.norm(method.encoder.blocks[0](x, rope)))
    h = method.targets(video, (1,))
    torch.testing.assert_close(h[..., 32:], method.targets(video))  # each level layer-normed on its own
    torch.testing.assert_close(
        h[..., :32].std(dim=-1, unbiased=False), torch.ones(h.shape[:2]), atol=1e-3, rtol=0
    )
    out = method(batch)
    out.loss.backward()
    assert out.embeddings.shape == (8, 32)  # the collapse monitor watches the last level
    assert all(p.grad is not None for p in method.predictor.predictor_embed.parameters())
    assert all(p.grad is not None for p in method.encoder.blocks[0].parameters())
    for levels in ("[2]", "[1, 1]", "1"):  # the last block is always a target; levels are a distinct list
        with pytest.raises(UserError, match="vjepa21.levels"):
            build_method(tiny_cfg("vjepa2_tiny", f"vjepa21.levels={levels}"))


def test_vjepa21_options_train_and_checkpoint_the_warmup_clock(tmp_path):
    options = ["vjepa21.context_loss_weight=0.5", "vjepa21.context_loss_warmup=0.5", "vjepa21.levels=[1]"]
    run = ["train.total_steps=2", "train.batch_size=4", "train.num_workers=0", "train.log_every=1"]
    quiet = ["train.tensorboard=false", "train.progress_bar=false"]
    run_pretrain(tiny_cfg("vjepa2_tiny", *options, *run, *quiet), tmp_path)
    state = load_checkpoint(tmp_path / "latest.pt")["model"]
    assert float(state["progress"]) == 0.5  # step index 1 of 2 finished
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert "context_loss" in rows[0].split(",") and len(rows) == 3


def test_ema_momentum_schedule_moves_target_toward_encoder():
    method, batch = batch_for(tiny_cfg("ijepa_tiny"))
    assert method.momentum(0.0) == pytest.approx(0.996) and method.momentum(1.0) == pytest.approx(1.0)
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in method.target_encoder.parameters()]
    method.after_optimizer_step(0.5)  # m = 0.998
    for b, t, o in zip(before, method.target_encoder.parameters(), method.encoder.parameters(), strict=True):
        torch.testing.assert_close(t, 0.998 * b + 0.002 * o)


def test_overfitting_one_batch_lowers_the_loss():
    method, batch = batch_for(tiny_cfg("ijepa_tiny"))
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(25):
        loss = method(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_regularizers_separate_healthy_from_collapsed_embeddings():
    g = torch.Generator().manual_seed(0)
    healthy = torch.randn(2048, 16, generator=g)
    collapsed = healthy[:, :1].expand(-1, 16) * 0.05
    assert sigreg(healthy, 128, g) < 5 < sigreg(collapsed, 128, g)
    assert vicreg_variance(healthy) < 0.05 and vicreg_variance(collapsed) > 0.9
    loss, parts = collapse_regularizer(healthy, RegularizerConfig(kind="vicreg"))
    assert loss > 0 and set(parts) == {"reg_variance", "reg_covariance"}
    method, batch = batch_for(
        tiny_cfg("ijepa_tiny", "regularizer.kind=sigreg", "regularizer.num_directions=64")
    )
    out = method(batch)
    assert "reg_sigreg" in out.metrics and out.loss > out.metrics["prediction_loss"]


@pytest.mark.slow
def test_pretrain_then_probe_end_to_end(tmp_path):
    run = ["train.total_steps=3", "train.batch_size=16", "train.num_workers=0", "train.log_every=1"]
    quiet = ["train.tensorboard=false", "train.progress_bar=false", "probe.epochs=2"]
    cfg = tiny_cfg("ijepa_tiny", *run, *quiet)
    run_pretrain(cfg, tmp_path)
    for name in ("config.yaml", "latest.pt", "metrics.csv", "curves.png", "masks.png"):
        assert (tmp_path / name).is_file(), name
    result = run_probe(tmp_path)
    assert result.pretrained.metric_name == "accuracy"
    assert 0.0 <= result.pretrained.test_metric <= 1.0 and 0.0 <= result.random_init.test_metric <= 1.0
