"""Training throughput: the tiny presets alone, or the I-JEPA step against the official code on equal work.

    python benchmarks/train_throughput.py [--presets ijepa_tiny vjepa_tiny] [--steps 10] [--device cuda]
    python benchmarks/train_throughput.py --official /tmp/official/ijepa [--repeats 30] [--threads 2]

Without --official: samples/s of full training steps (forward, backward, AdamW, EMA) of each preset as
configured, in fp32 and under bf16 autocast, and the achieved FLOP/s as a fraction of this machine's
measured matmul peak. FLOPs of one step are counted by torch's FlopCounterMode on the real step; the peak
is the best of a few large square matmuls in the same dtype. Steps cycle through a few batches drawn by
the preset's own mask sampler, so the token counts are the sampler's, not one batch's.

With --official PATH (a checkout of github.com/facebookresearch/ijepa, tested at 52c1ae95): the official
I-JEPA training step against ours, in one process, on equal work. The official modules are imported from
PATH at run time (nothing of theirs is copied here): its VisionTransformer encoder, an EMA copy as target
encoder, its VisionTransformerPredictor, its AdamW groups and lr / weight-decay schedules
(`src.helper.init_opt`); the step is the body of `train_step` in its src/train.py (targets: layer-normed
target-encoder tokens gathered by `apply_masks`; smooth L1; backward; optimizer step; EMA loop), without
its logging (grad_logger, float of the loss). Both sides are built at the ijepa_tiny sizes (64 px, patch
8, 6x192 encoder with 3 heads, 3x96 predictor, batch 64) with the same weights (ours loaded from the
official state dicts); the preset's VICReg term is off (the official step has none). Both get the same
images and the same mask tensors (worldjepa's sampler: at an 8x8 grid the official collator would hand
the model fewer tokens), and before timing the script checks that the first step's losses and the FLOPs
torch counts on the next step agree (to 1e-3 relative; on a CPU the FLOPs are equal). The official
`torch.cuda.amp.autocast` does nothing on a CPU, so for bf16 both sides run under the same
`torch.autocast(device, bfloat16)`. Steps alternate official / ours (the order flips every repeat) so
both see the same machine load; the table gives each side's median step time as samples/s and the median
of the per-repeat time ratios. Without --official there is no stand-in for the official step: the
comparison always runs the official code itself.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from make_oracle import official_src
from worldjepa.data.datasets import build_dataset
from worldjepa.interop.official import load_official_state
from worldjepa.models import build_mask_collator, build_method
from worldjepa.presets import PretrainPreset, load_config
from worldjepa.train.device import autocast, native_bf16, resolve_device, to_device
from worldjepa.train.optim import build_adamw, set_hparams
from worldjepa.train.schedules import cosine, warmup_cosine

Step = Callable[[dict], Tensor]  # one full training step on a batch -> its loss


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: torch.dtype, device: torch.device, repeats: int = 5) -> float:
    n = 8192 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def sampled_batches(cfg: PretrainPreset, encoder: nn.Module, count: int, device: torch.device) -> list[dict]:
    """`count` training batches of the preset's data, masked by its sampler as a training run would be."""
    dataset = build_dataset(cfg.data, cfg.video, train=True)
    collate = build_mask_collator(cfg.masks, encoder)
    size = cfg.train.batch_size
    batches = []
    for k in range(count):
        seeds = range(k * size, (k + 1) * size)
        samples = [{**dataset.sample(i, torch.Generator().manual_seed(i)), "seed": i} for i in seeds]
        batches.append(to_device(collate(samples), device))
    return batches


def our_step(method: nn.Module, cfg: PretrainPreset, precision: str, device: torch.device) -> Step:
    """worldjepa's training step (as `Trainer._train_step` runs it, one micro-batch, no clipping)."""
    train, total = cfg.train, cfg.train.total_steps
    warmup = round(train.warmup_fraction * total)
    optimizer = build_adamw(method, train.lr, train.betas, train.eps)
    count = 0

    def step(batch: dict) -> Tensor:
        nonlocal count
        lr = warmup_cosine(count, total, warmup, train.start_lr, train.lr, train.final_lr)
        set_hparams(optimizer, lr, cosine(count, total, train.weight_decay, train.final_weight_decay))
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = method(batch).loss
        loss.backward()
        optimizer.step()
        method.after_optimizer_step(min(count / total, 1.0))
        count += 1
        return loss.detach()

    return step


def measure(
    preset: str, precision: str, steps: int, overrides: list[str], device: torch.device
) -> tuple[float, float]:
    """(samples/s, FLOP/s) of full training steps of `preset` (forward, backward, AdamW, EMA)."""
    cfg = load_config(preset, overrides, PretrainPreset)
    torch.manual_seed(0)
    method = build_method(cfg).to(device)
    batches = sampled_batches(cfg, method.encoder, 4, device)
    step = our_step(method, cfg, precision, device)
    with FlopCounterMode(display=False) as counter:
        for batch in batches:
            step(batch)
    flops = counter.get_total_flops() / len(batches)
    step(batches[0])  # warm-up
    synchronize(device)
    start = time.perf_counter()
    for k in range(steps):
        step(batches[k % len(batches)])
    synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    return cfg.train.batch_size / seconds, flops / seconds


def preset_table(args: argparse.Namespace, device: torch.device) -> None:
    peaks = {"fp32": matmul_peak(torch.float32, device), "bf16": matmul_peak(torch.bfloat16, device)}
    print(f"{device}, threads {torch.get_num_threads()}; matmul peak fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")  # fmt: skip
    print(f"{'preset':14s} {'precision':9s} {'samples/s':>10s} {'GFLOP/s':>9s} {'of peak':>8s}")
    for preset in args.presets:
        for precision in ("fp32", "bf16"):
            rate, flops = measure(preset, precision, args.steps, args.overrides, device)
            print(
                f"{preset:14s} {precision:9s} {rate:10.1f} {flops / 1e9:9.1f} {flops / peaks[precision]:8.1%}"
            )


# ---------------------------------------------------------------- against the official I-JEPA step


def official_networks(repo: Path, cfg: PretrainPreset) -> tuple[nn.Module, nn.Module, nn.Module, dict]:
    """The official encoder, target encoder and predictor at the preset's sizes, and the official
    functions the step needs (imported from `repo`, as its src/helper.py builds them)."""
    with official_src(repo):
        vit = importlib.import_module("src.models.vision_transformer")
        helper = importlib.import_module("src.helper")
        functions = {
            "init_opt": helper.init_opt,
            "apply_masks": importlib.import_module("src.masks.utils").apply_masks,
            "repeat_interleave_batch": importlib.import_module("src.utils.tensors").repeat_interleave_batch,
        }
    helper.logger.setLevel("WARNING")  # init_opt logs at INFO on the root logger it configures
    enc, pred = cfg.model.encoder_shape, cfg.model.predictor_shape
    norm = partial(nn.LayerNorm, eps=1e-6)
    encoder = vit.VisionTransformer(
        img_size=[cfg.data.image_size], patch_size=cfg.model.patch_size, embed_dim=enc.embed_dim,
        depth=enc.depth, num_heads=enc.heads, mlp_ratio=enc.mlp_ratio, qkv_bias=True, norm_layer=norm,
    )  # fmt: skip
    predictor = vit.vit_predictor(
        num_patches=encoder.patch_embed.num_patches, embed_dim=enc.embed_dim,
        predictor_embed_dim=pred.embed_dim, depth=pred.depth, num_heads=pred.heads,
    )  # fmt: skip
    target_encoder = copy.deepcopy(encoder).requires_grad_(False)
    return encoder, target_encoder, predictor, functions


def official_step(
    networks: tuple[nn.Module, nn.Module, nn.Module, dict], cfg: PretrainPreset, precision: str, device
) -> Step:
    """The body of `train_step` in the official src/train.py (logging left out), on our batch layout:
    masks_enc = [context], masks_pred = the target blocks."""
    encoder, target_encoder, predictor, fn = networks
    train, total = cfg.train, cfg.train.total_steps
    optimizer, _, scheduler, wd_scheduler = fn["init_opt"](
        encoder=encoder, predictor=predictor, wd=train.weight_decay, final_wd=train.final_weight_decay,
        start_lr=train.start_lr, ref_lr=train.lr, final_lr=train.final_lr, iterations_per_epoch=total,
        warmup=train.warmup_fraction, num_epochs=1, ipe_scale=1.0,
    )  # fmt: skip
    ema = cfg.ema
    momentum_scheduler = (ema[0] + i * (ema[1] - ema[0]) / total for i in range(total + 1))
    apply_masks, repeat_interleave_batch = fn["apply_masks"], fn["repeat_interleave_batch"]

    def step(batch: dict) -> Tensor:
        imgs, masks_enc, masks_pred = batch["image"], [batch["context"]], list(batch["targets"])
        scheduler.step()
        wd_scheduler.step()

        def forward_target():
            with torch.no_grad():
                h = target_encoder(imgs)
                h = F.layer_norm(h, (h.size(-1),))
                B = len(h)
                h = apply_masks(h, masks_pred)
                return repeat_interleave_batch(h, B, repeat=len(masks_enc))

        def forward_context():
            z = encoder(imgs, masks_enc)
            return predictor(z, masks_enc, masks_pred)

        with autocast(device, precision):
            h = forward_target()
            z = forward_context()
            loss = F.smooth_l1_loss(z, h)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        with torch.no_grad():
            m = next(momentum_scheduler)
            for param_q, param_k in zip(encoder.parameters(), target_encoder.parameters(), strict=True):
                param_k.data.mul_(m).add_((1.0 - m) * param_q.detach().data)
        return loss.detach()

    return step


def check_equal_work(steps: dict[str, Step], batches: list[dict], precision: str) -> None:
    """Run the first steps of both sides (same weights, same batch) and stop unless their losses and
    the FLOPs torch counts on the next batch agree; print both."""
    loss = {name: float(step(batches[0])) for name, step in steps.items()}
    flops = {}
    for name, step in steps.items():
        with FlopCounterMode(display=False) as counter:
            step(batches[1])
        flops[name] = counter.get_total_flops() / len(batches[1]["image"])
    print(f"{precision}: first loss official {loss['official']:.6f}, ours {loss['ours']:.6f}; "
          f"GFLOP per image official {flops['official'] / 1e9:.4f}, ours {flops['ours'] / 1e9:.4f}")  # fmt: skip
    for measure in (loss, flops):
        if abs(measure["official"] - measure["ours"]) > 1e-3 * measure["official"]:
            raise SystemExit("the two steps do not do the same work: see the line above")


def compare_official(args: argparse.Namespace, device: torch.device) -> None:
    cfg = load_config("ijepa_tiny", ["regularizer.kind=none", *args.overrides], PretrainPreset)
    torch.manual_seed(0)
    batches = sampled_batches(cfg, build_method(cfg).encoder, args.batches, device)
    context = statistics.mean(b["context"].shape[1] for b in batches)
    targets = statistics.mean(b["targets"].shape[0] * b["targets"].shape[2] for b in batches)
    size = cfg.train.batch_size
    print(f"load average (1, 5, 15 min) at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{device}, torch {torch.__version__}, {torch.get_num_threads()} threads; ijepa_tiny without VICReg, "
          f"batch {size}; {len(batches)} batches of our sampler: {context:.1f} context tokens, "
          f"{targets:.1f} target tokens (all blocks) per image on average")  # fmt: skip
    rows = ["| precision | official img/s | ours img/s | ours / official (medians) | median of ratios |",
            "|---|---:|---:|---:|---:|"]  # fmt: skip
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        networks = official_networks(args.official, cfg)
        method = build_method(cfg).to(device)
        for ours, theirs in zip(
            (method.encoder, method.target_encoder, method.predictor), networks[:3], strict=True
        ):
            load_official_state(ours, theirs.state_dict(), "the official network")
        networks = (*(n.to(device) for n in networks[:3]), networks[3])
        steps = {"official": official_step(networks, cfg, precision, device),
                 "ours": our_step(method, cfg, precision, device)}  # fmt: skip
        check_equal_work(steps, batches, precision)
        times: dict[str, list[float]] = {name: [] for name in steps}
        for repeat in range(args.warmup + args.repeats):
            batch = batches[repeat % len(batches)]
            for name in list(steps)[:: 1 if repeat % 2 else -1]:
                synchronize(device)
                start = time.perf_counter()
                steps[name](batch)
                synchronize(device)
                if repeat >= args.warmup:
                    times[name].append(time.perf_counter() - start)
        rate = {name: size / statistics.median(t) for name, t in times.items()}
        ratios = statistics.median(a / b for a, b in zip(times["official"], times["ours"], strict=True))
        rows.append(f"| {precision} | {rate['official']:.1f} | {rate['ours']:.1f} | "
                    f"{rate['ours'] / rate['official']:.2f}x | {ratios:.2f}x |")  # fmt: skip
    print("\n".join(rows))
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["ijepa_tiny", "vjepa_tiny"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--official", type=Path, help="checkout of facebookresearch/ijepa: compare with it")
    parser.add_argument("--repeats", type=int, default=30, help="timed steps of each side (--official)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each side (--official)")
    parser.add_argument("--batches", type=int, default=8, help="distinct sampled batches (--official)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("overrides", nargs="*", help="preset overrides, e.g. train.batch_size=32")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if not native_bf16(device):
        print("this CPU has no native bf16: worldjepa's bf16 rows run in float32 (`native_bf16`)")
    if args.official:
        compare_official(args, device)
    else:
        preset_table(args, device)


if __name__ == "__main__":
    main()
