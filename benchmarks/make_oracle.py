"""Regenerate a parity-oracle folder like tests/data/oracle/ from the official JEPA repositories.

The official facebookresearch modules (ijepa, jepa, vjepa2) run here unmodified, side by side with
nothing of theirs copied: each repository's `src` package is imported at run time from the checkout given
on the command line. The folder written has the format of tests/data/oracle/ (see its README: the same
top-level keys, case names, checkpoint wrapping, config keys and an X.json beside every X.pt) with other
sizes, seed and batch size, so that

    WORLDJEPA_ORACLE_DIR=runs/oracle_alt python -m pytest tests/test_parity_oracle.py tests/test_interop.py

shows whether the parity tests read every size from the files. Generation follows that README: the
official init under torch.manual_seed(seed), then LayerNorm gains 1+0.1·randn, every bias 0.02·randn and
mask tokens 0.1·randn; eval mode, every dropout 0; each SDPA call forced to the math backend (the official
`torch.backends.cuda.sdp_kernel()` wrapper is swapped for a math-only context); the vjepa2 encoder with
use_sdpa=False; a float32 run (`outputs`, plus `intermediates` from forward hooks) and a float64 run of the
same weights and inputs (`outputs_f64`); one CPU thread.

    git clone https://github.com/facebookresearch/ijepa /tmp/official/ijepa   # at 52c1ae95
    git clone https://github.com/facebookresearch/jepa /tmp/official/jepa     # at 51c59d51
    git clone https://github.com/facebookresearch/vjepa2 /tmp/official/vjepa2 # at c2963a47
    python benchmarks/make_oracle.py --ijepa /tmp/official/ijepa --jepa /tmp/official/jepa \
        --vjepa2 /tmp/official/vjepa2 --out runs/oracle_alt --seed 7 --batch 3

The vjepa2 modules import timm (drop_path) and einops (rearrange) but call neither at drop-path 0: where
they are not installed, stand-ins that raise if called are put in sys.modules while the code is imported.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import importlib.util
import json
import subprocess
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

NORM = "LayerNorm(eps=1e-6)"
FACTORY_ARGS = {"mlp_ratio", "qkv_bias", "norm_layer"}  # what the official vit_* factories pass themselves
EXPECTED_COMMITS = {"ijepa": "52c1ae95", "jepa": "51c59d51", "vjepa2": "c2963a47"}
VIT = "src.models.vision_transformer"

# ---------------------------------------------------------------- sizes (all differ from the shipped set)
IJEPA = {
    "encoder": {
        "cls": f"{VIT}.VisionTransformer",
        "img_size": [48],
        "patch_size": 8,
        "in_chans": 3,
        "embed_dim": 96,
        "depth": 3,
        "num_heads": 6,
        "mlp_ratio": 4,
        "qkv_bias": True,
        "norm_layer": NORM,
        "drop_rate": 0.0,
        "attn_drop_rate": 0.0,
        "drop_path_rate": 0.0,
        "init_std": 0.02,
    },
    "predictor": {
        "factory": f"{VIT}.vit_predictor",
        "num_patches": 36,
        "embed_dim": 96,
        "predictor_embed_dim": 48,
        "depth": 3,
        "num_heads": 3,
        "mlp_ratio": 4.0,
        "qkv_bias": True,
        "norm_layer": NORM,
        "init_std": 0.02,
    },
}
IJEPA_MASKS = {"context": 14, "targets": 3, "target_size": 5}  # of 6·6 = 36 tokens

VJEPA1_GEOMETRY = {"img_size": 40, "patch_size": 8, "num_frames": 6, "tubelet_size": 2}
VJEPA1 = {
    "encoder": {
        "cls": f"{VIT}.VisionTransformer",
        **VJEPA1_GEOMETRY,
        "in_chans": 3,
        "embed_dim": 80,
        "depth": 3,
        "num_heads": 5,
        "mlp_ratio": 4.0,
        "qkv_bias": True,
        "uniform_power": True,
        "norm_layer": NORM,
        "drop_rate": 0.0,
        "attn_drop_rate": 0.0,
        "init_std": 0.02,
    },
    "predictor": {
        "factory": "src.models.predictor.vit_predictor",
        **VJEPA1_GEOMETRY,
        "embed_dim": 80,
        "predictor_embed_dim": 40,
        "depth": 3,
        "num_heads": 4,
        "uniform_power": True,
        "use_mask_tokens": True,
        "num_mask_tokens": 3,
        "zero_init_mask_tokens": True,
        "mlp_ratio": 4.0,
        "qkv_bias": True,
        "norm_layer": NORM,
        "init_std": 0.02,
    },
}
VJEPA1_CONTEXT = 44  # of 3·5·5 = 75 tokens; the other 31 are targets
# (width, grid side, temporal depth, uniform power) of the official 3D sin-cos tables kept in `aux`
VJEPA1_TABLES = [(80, 5, 3, True), (40, 5, 3, True), (48, 3, 4, False)]

VJEPA2_GEOMETRY = {"img_size": 48, "patch_size": 8, "num_frames": 6, "tubelet_size": 2}
VJEPA2 = {
    "encoder": {
        "cls": f"{VIT}.VisionTransformer",
        **VJEPA2_GEOMETRY,
        "in_chans": 3,
        "embed_dim": 80,
        "depth": 3,
        "num_heads": 4,  # head_dim 20: RoPE 6/6/6 and 2 unrotated
        "mlp_ratio": 4.0,
        "qkv_bias": True,
        "use_rope": True,
        "use_sdpa": False,
        "uniform_power": True,
        "use_silu": False,
        "wide_silu": True,
        "handle_nonsquare_inputs": True,
        "use_activation_checkpointing": False,
        "norm_layer": NORM,
        "drop_rate": 0.0,
        "attn_drop_rate": 0.0,
        "drop_path_rate": 0.0,
        "init_std": 0.02,
    },
    "predictor": {
        "factory": "src.models.predictor.vit_predictor",
        **VJEPA2_GEOMETRY,
        "embed_dim": 80,
        "predictor_embed_dim": 56,
        "depth": 3,
        "num_heads": 2,  # head_dim 28: RoPE 8/8/8 and 4 unrotated
        "use_mask_tokens": True,
        "num_mask_tokens": 3,
        "zero_init_mask_tokens": True,
        "use_rope": True,
        "uniform_power": True,
        "use_silu": False,
        "wide_silu": True,
        "use_activation_checkpointing": False,
        "return_all_tokens": False,
        "chop_last_n_tokens": 0,
        "mlp_ratio": 4.0,
        "qkv_bias": True,
        "norm_layer": NORM,
        "init_std": 0.02,
    },
}
VJEPA2_CONTEXT = 60  # of 3·6·6 = 108 tokens; the other 48 are targets

AC = {
    "factory": "src.models.ac_predictor.vit_ac_predictor",
    "img_size": 40,
    "patch_size": 8,
    "num_frames": 10,  # the block-causal mask is built for num_frames // tubelet_size = 5 steps
    "tubelet_size": 2,
    "embed_dim": 80,
    "predictor_embed_dim": 60,
    "depth": 3,
    "num_heads": 3,  # head_dim 20: RoPE 6/6/6 and 2 unrotated
    "action_embed_dim": 5,
    "use_extrinsics": False,
    "use_rope": True,
    "is_frame_causal": True,
    "uniform_power": True,
    "use_silu": False,
    "wide_silu": True,
    "use_activation_checkpointing": False,
    "mlp_ratio": 4.0,
    "qkv_bias": True,
    "norm_layer": NORM,
    "drop_rate": 0.0,
    "attn_drop_rate": 0.0,
    "drop_path_rate": 0.0,
    "init_std": 0.02,
}
AC_STEPS = (5, 2, 1)
AC_MASKS = [(5, 5, 5, 2), (3, 2, 3, 3)]  # (T, H, W, add_tokens) of the block-causal masks kept in `aux`


# ---------------------------------------------------------------- importing the official code
def _stand_in(*_: Any, **__: Any) -> None:
    raise RuntimeError("stand-in for an optional dependency the official code imports but must not call here")


def missing_dependencies() -> dict[str, types.ModuleType]:
    """Stand-in modules for timm.models.layers.drop_path and einops.rearrange when they are not installed."""
    stubs: dict[str, types.ModuleType] = {}
    if importlib.util.find_spec("timm") is None:
        stubs |= {name: types.ModuleType(name) for name in ("timm", "timm.models", "timm.models.layers")}
        stubs["timm.models.layers"].drop_path = _stand_in
    if importlib.util.find_spec("einops") is None:
        stubs["einops"] = types.ModuleType("einops")
        stubs["einops"].rearrange = _stand_in
    return stubs


@contextlib.contextmanager
def official_src(repo: Path) -> Iterator[None]:
    """Make `import src.…` resolve to `repo`/src (all three repositories name their package `src`)."""
    package = types.ModuleType("src")
    package.__path__ = [str(repo / "src")]
    added = {"src": package, **missing_dependencies()}
    sys.modules.update(added)
    try:
        yield
    finally:
        for name in [name for name in sys.modules if name.split(".")[0] in {"src", *added}]:
            del sys.modules[name]


def resolve(dotted: str) -> Callable[..., Any]:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def commit_of(repo: Path, name: str) -> str:
    """The checkout's commit; a warning when it is not the one the shipped oracle was made at."""
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    commit = found.stdout.strip() or "unknown"
    if not commit.startswith(EXPECTED_COMMITS[name]):
        print(f"warning: {repo} is at {commit}, the shipped oracle used {EXPECTED_COMMITS[name]}")
    return commit


@contextlib.contextmanager
def official_attention(math_only: bool) -> Iterator[None]:
    """The official modules wrap SDPA in `torch.backends.cuda.sdp_kernel()` (every backend): make it MATH."""
    original = torch.backends.cuda.sdp_kernel
    if math_only:
        torch.backends.cuda.sdp_kernel = lambda *_, **__: sdpa_kernel(SDPBackend.MATH)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # sdp_kernel is deprecated
            yield
    finally:
        torch.backends.cuda.sdp_kernel = original


# ---------------------------------------------------------------- models
def build(config: dict[str, Any]) -> nn.Module:
    """An official module from its config: a class gets norm_layer, a vit_* factory sets it itself."""
    skip = {"cls", "factory", "norm_layer"} | (FACTORY_ARGS if "factory" in config else set())
    kwargs = {key: value for key, value in config.items() if key not in skip}
    if "cls" in config:
        kwargs["norm_layer"] = partial(nn.LayerNorm, eps=1e-6)
    return resolve(config.get("cls") or config["factory"])(**kwargs)


def perturb(model: nn.Module) -> nn.Module:
    """LayerNorm gains 1+0.1·randn, every bias 0.02·randn, mask tokens 0.1·randn; then eval mode."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.copy_(1 + 0.1 * torch.randn_like(module.weight))
            if (
                isinstance(module, nn.LayerNorm | nn.Linear | nn.Conv2d | nn.Conv3d)
                and module.bias is not None
            ):
                module.bias.copy_(0.02 * torch.randn_like(module.bias))
        for name, param in model.named_parameters():
            if name.split(".")[0] in {"mask_token", "mask_tokens"}:
                param.copy_(0.1 * torch.randn_like(param))
    return model.eval()


def hook_names(encoder: bool, depth: int, *conditioning: str) -> tuple[str, ...]:
    if encoder:
        return ("patch_embed", *(f"blocks.{i}" for i in range(depth)), "norm")
    blocks = (f"predictor_blocks.{i}" for i in range(depth))
    return ("predictor_embed", *conditioning, *blocks, "predictor_norm")


@contextlib.contextmanager
def hooked(model: nn.Module, names: tuple[str, ...]) -> Iterator[dict[str, torch.Tensor]]:
    """Outputs of the named submodules, cloned inside the hook (before any in-place change by the caller)."""
    seen: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    keep = lambda name, _module, _args, out: seen.__setitem__(name, out.detach().clone())
    handles = [modules[name].register_forward_hook(partial(keep, name)) for name in names]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def cast(value: Any, dtype: torch.dtype) -> Any:
    """Floating tensors (also inside lists and dicts) converted to `dtype`; index tensors and ints kept."""
    if isinstance(value, dict):
        return {key: cast(item, dtype) for key, item in value.items()}
    if isinstance(value, list):
        return [cast(item, dtype) for item in value]
    is_float = isinstance(value, torch.Tensor) and value.is_floating_point()
    return value.to(dtype) if is_float else value


def run(call: str, models: dict[str, nn.Module], inputs: dict[str, Any]) -> torch.Tensor:
    """Evaluate a call string such as `predictor(x, masks_x, masks_y, mask_index=mask_index)`."""
    return eval(call, {"__builtins__": {}}, {**models, **inputs})


# ---------------------------------------------------------------- one oracle file
@dataclass
class Oracle:
    """One oracle file being recorded: the float32 models, their float64 copies and every case run."""

    models: dict[str, nn.Module]
    models64: dict[str, nn.Module] = field(init=False)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    outputs_f64: dict[str, torch.Tensor] = field(default_factory=dict)
    intermediates: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    diffs: dict[str, dict[str, float]] = field(default_factory=dict)
    calls: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.models64 = {part: copy.deepcopy(model).double() for part, model in self.models.items()}

    def case(self, name: str, call: str, hooks: tuple[str, ...], **inputs: Any) -> torch.Tensor:
        """Run `call` in float32 (math SDPA, hooks on its module), float64, and float32 default SDPA."""
        part = call.split("(")[0]
        with torch.no_grad():
            with official_attention(math_only=True), hooked(self.models[part], hooks) as seen:
                out = run(call, self.models, inputs)
            with official_attention(math_only=True):
                out64 = run(call, self.models64, cast(inputs, torch.float64))
            with official_attention(math_only=False):
                default = run(call, self.models, inputs)
        self.inputs[name], self.outputs[name], self.outputs_f64[name] = inputs, out, out64
        self.intermediates[name], self.calls[name] = seen, call
        self.diffs[name] = {
            "f32_math_vs_f64": (out.double() - out64).abs().max().item(),
            "f32_math_vs_f32_default_sdpa": (out - default).abs().max().item(),
        }
        return out

    def checkpoint(self, prefix: str) -> dict[str, Any]:
        """Weights as the official save_checkpoint stores them (target_encoder shares the encoder's)."""
        states = {part: {prefix + k: v for k, v in m.state_dict().items()} for part, m in self.models.items()}
        if "encoder" in states:
            states = {"encoder": states["encoder"], "target_encoder": dict(states["encoder"]), **states}
        return {**states, "epoch": 0}


def split_tokens(batch: int, tokens: int, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random split of 0..tokens-1 per sample: (kept [B, keep], the rest), sorted, rows all different."""
    while True:
        order = torch.stack([torch.randperm(tokens) for _ in range(batch)])
        kept = order[:, :keep].sort(dim=1).values
        if len({tuple(row) for row in kept.tolist()}) == batch:
            return kept, order[:, keep:].sort(dim=1).values


def tokens_of(config: dict[str, Any]) -> int:
    side = config["img_size"][0] if isinstance(config["img_size"], list) else config["img_size"]
    grid = (side // config["patch_size"]) ** 2
    return grid * config.get("num_frames", 1) // config.get("tubelet_size", 1)


# ---------------------------------------------------------------- the four files
def make_ijepa(batch: int) -> tuple[Oracle, dict[str, Any], str]:
    enc_cfg, pred_cfg = IJEPA["encoder"], IJEPA["predictor"]
    oracle = Oracle({"encoder": perturb(build(enc_cfg)), "predictor": perturb(build(pred_cfg))})
    side, tokens = enc_cfg["img_size"][0], tokens_of(enc_cfg)
    enc_hooks, pred_hooks = hook_names(True, enc_cfg["depth"]), hook_names(False, pred_cfg["depth"])
    img = torch.randn(batch, enc_cfg["in_chans"], side, side)
    oracle.case("enc_full", "encoder(img)", enc_hooks, img=img)
    context, rest = split_tokens(batch, tokens, IJEPA_MASKS["context"])
    x = oracle.case("enc_masked", "encoder(img, masks=masks_enc)", enc_hooks, img=img, masks_enc=[context])
    size = IJEPA_MASKS["target_size"]
    targets = [
        rest.gather(1, split_tokens(batch, rest.shape[1], size)[0]) for _ in range(IJEPA_MASKS["targets"])
    ]
    call = "predictor(x, masks_enc, masks_pred)"
    oracle.case("pred", call, pred_hooks, x=x, masks_enc=[context], masks_pred=targets)
    notes = (
        f"masks_enc: list of 1 index tensor [B,{IJEPA_MASKS['context']}] (tokens kept); masks_pred: list of "
        f"{len(targets)} index tensors [B,{IJEPA_MASKS['target_size']}] (targets, disjoint from context, may "
        "overlap each other). Predictor output rows are ordered target-mask-major: row j*B+b = (target mask "
        "j, sample b)."
    )
    return oracle, {}, notes


def make_video(config: dict[str, Any], context: int, batch: int, predictor_call: str) -> Oracle:
    """Encoder cases, then one predictor case per mask token (V-JEPA and V-JEPA 2 differ in names only)."""
    enc_cfg, pred_cfg = config["encoder"], config["predictor"]
    oracle = Oracle({"encoder": perturb(build(enc_cfg)), "predictor": perturb(build(pred_cfg))})
    enc_hooks, pred_hooks = hook_names(True, enc_cfg["depth"]), hook_names(False, pred_cfg["depth"])
    side = enc_cfg["img_size"]
    video = torch.randn(batch, enc_cfg["in_chans"], enc_cfg["num_frames"], side, side)
    oracle.case("enc_full", "encoder(video)", enc_hooks, video=video)
    keep, targets = split_tokens(batch, tokens_of(enc_cfg), context)
    z = oracle.case("enc_masked", "encoder(video, masks=masks_x)", enc_hooks, video=video, masks_x=keep)
    tgt = torch.randn(batch, targets.shape[1], enc_cfg["embed_dim"])
    for index in range(pred_cfg["num_mask_tokens"]):
        args = (
            {"ctxt": z, "tgt": tgt, "masks_ctxt": keep, "masks_tgt": targets}
            if "ctxt" in predictor_call
            else {"x": z, "masks_x": keep, "masks_y": targets}
        )
        oracle.case(f"pred_mi{index}", predictor_call, pred_hooks, **args, mask_index=index)
    return oracle


def make_vjepa1(batch: int) -> tuple[Oracle, dict[str, Any], str]:
    call = "predictor(ctxt, tgt, masks_ctxt, masks_tgt, mask_index=mask_index)"
    oracle = make_video(VJEPA1, VJEPA1_CONTEXT, batch, call)
    table = resolve("src.models.utils.pos_embs.get_3d_sincos_pos_embed")
    aux = {
        f"pos_embed_3d_f64_embed{d}_grid{g}_depth{t}_{'uniform' if u else 'plain'}": torch.from_numpy(
            table(d, g, t, cls_token=False, uniform_power=u)
        )
        for d, g, t, u in VJEPA1_TABLES
    }
    notes = (
        "V-JEPA 1: absolute 3D sincos pos-embed (uniform_power=True) stored in state_dict as pos_embed / "
        "predictor_pos_embed. 'tgt' is ignored when use_mask_tokens=True."
    )
    return oracle, aux, notes


def make_vjepa2(batch: int) -> tuple[Oracle, dict[str, Any], str]:
    oracle = make_video(
        VJEPA2, VJEPA2_CONTEXT, batch, "predictor(x, masks_x, masks_y, mask_index=mask_index)"
    )
    enc = VJEPA2["encoder"]
    grid = enc["img_size"] // enc["patch_size"]
    notes = (
        f"Encoder: video [B,C,T,H,W] -> tokens [B, (T/{enc['tubelet_size']})*(H/{enc['patch_size']})*"
        f"(W/{enc['patch_size']}), {enc['embed_dim']}] ordered (t,h,w) on a {grid}x{grid} grid. masks_x = "
        "indices of tokens to KEEP. Predictor input x = enc_masked output. target_encoder shares the encoder "
        "tensors (deepcopy at init in the official script)."
    )
    return oracle, {}, notes


def rope_unit(batch: int) -> dict[str, torch.Tensor]:
    """One call of the official rotate_queries_or_keys with a float 1-D and an int64 per-token position."""
    rotate = resolve("src.models.utils.modules.rotate_queries_or_keys")
    x = torch.randn(batch, 2, 6, 12)
    pos_1d = torch.tensor([0.0, 1.0, 2.5, 4.0, 7.0, 11.0])
    pos_3d = torch.randint(0, 9, x.shape[:3])
    return {
        "x": x,
        "pos_1d": pos_1d,
        "out_pos_1d": rotate(x, pos_1d),
        "out_pos_1d_f64": rotate(x.double(), pos_1d),
        "pos_3d_int64": pos_3d,
        "out_pos_3d": rotate(x, pos_3d),
    }


def make_ac(batch: int) -> tuple[Oracle, dict[str, Any], str]:
    oracle = Oracle({"predictor": perturb(build(AC))})
    per_frame, dim_a = (AC["img_size"] // AC["patch_size"]) ** 2, AC["action_embed_dim"]
    hooks = hook_names(False, AC["depth"], "state_encoder", "action_encoder")
    for steps in AC_STEPS:
        x = torch.randn(batch, steps * per_frame, AC["embed_dim"])
        actions, states = torch.randn(batch, steps, dim_a), torch.randn(batch, steps, dim_a)
        oracle.case(f"T{steps}", "predictor(x, actions, states)", hooks, x=x, actions=actions, states=states)
    mask = resolve("src.models.utils.modules.build_action_block_causal_attention_mask")
    aux: dict[str, Any] = {
        f"attn_mask_built_T{t}_H{h}_W{w}_add{k}": mask(t, h, w, k) for t, h, w, k in AC_MASKS
    }
    aux["rope_unit"] = rope_unit(batch)
    notes = (
        f"T = number of time steps (frames), each with H*W={per_frame} tokens. num_frames={AC['num_frames']} "
        f"builds the block-causal mask for {AC['num_frames'] // AC['tubelet_size']} steps, sliced to the "
        "sequence length; T must be <= num_frames//tubelet_size. Weights do not depend on num_frames."
    )
    return oracle, aux, notes


# ---------------------------------------------------------------- writing
def describe(value: Any) -> Any:
    """The JSON view of a file's content: shapes and dtypes instead of tensors."""
    if isinstance(value, torch.Tensor):
        return f"{list(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, dict):
        return {key: describe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [describe(item) for item in value]
    return value


@dataclass
class Family:
    """One oracle file: where its code comes from and how it is made."""

    name: str
    repo: str
    make: Callable[[int], tuple[Oracle, dict[str, Any], str]]
    config: dict[str, Any]
    prefix: str


FAMILIES = [
    Family("ijepa", "ijepa", make_ijepa, IJEPA, "module."),
    Family("vjepa1", "jepa", make_vjepa1, VJEPA1, "module.backbone."),
    Family("vjepa2_pretrain", "vjepa2", make_vjepa2, VJEPA2, "module.backbone."),
    Family("vjepa2_ac_predictor", "vjepa2", make_ac, AC, "module."),
]


def meta_of(family: Family, repo: Path, seed: int, oracle: Oracle, notes: str) -> dict[str, Any]:
    return {
        "source_repo": f"facebookresearch/{family.repo}",
        "source_commit": commit_of(repo, family.repo),
        "torch_version": str(torch.__version__),
        "dtype": "float32 (outputs), float64 (outputs_f64: same weights/inputs cast to float64)",
        "sdpa": "every F.scaled_dot_product_attention call forced to SDPBackend.MATH",
        "seed": seed,
        "max_abs_diff": oracle.diffs,
        "calls": oracle.calls,
        "notes": notes,
        "generator": "benchmarks/make_oracle.py (worldjepa)",
    }


def write(family: Family, repo: Path, out: Path, seed: int, batch: int) -> None:
    """Make one family's file under `out`: X.pt with the tensors, X.json with their shapes."""
    with official_src(repo):
        torch.manual_seed(seed)
        oracle, aux, notes = family.make(batch)
    meta = meta_of(family, repo, seed, oracle, notes)
    state = oracle.checkpoint(family.prefix)
    torch.save(
        {
            "state_dict_official": state,
            "inputs": oracle.inputs,
            "outputs": oracle.outputs,
            "outputs_f64": oracle.outputs_f64,
            "intermediates": oracle.intermediates,
            "config": family.config,
            "aux": aux,
            "meta": meta,
        },
        out / f"{family.name}.pt",
    )
    keys = {part: list(value) if isinstance(value, dict) else value for part, value in state.items()}
    summary = {
        "file": f"{family.name}.pt",
        "meta": meta,
        "config": family.config,
        "state_dict_official_keys": keys,
        **describe(
            {"inputs": oracle.inputs, "outputs": oracle.outputs, "intermediates": oracle.intermediates}
        ),
        "aux": describe(aux),
    }
    (out / f"{family.name}.json").write_text(json.dumps(summary, indent=1) + "\n")
    worst = max(diff["f32_math_vs_f64"] for diff in oracle.diffs.values())
    print(f"{out / family.name}.pt: {len(oracle.calls)} cases, float32 vs float64 at most {worst:.2e}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ijepa", type=Path, required=True, help="checkout of facebookresearch/ijepa")
    parser.add_argument("--jepa", type=Path, required=True, help="checkout of facebookresearch/jepa")
    parser.add_argument("--vjepa2", type=Path, required=True, help="checkout of facebookresearch/vjepa2")
    parser.add_argument("--out", type=Path, default=Path("runs/oracle_alt"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    repos = {"ijepa": args.ijepa, "jepa": args.jepa, "vjepa2": args.vjepa2}
    for family in FAMILIES:
        write(family, repos[family.repo].resolve(), args.out, args.seed, args.batch)


if __name__ == "__main__":
    main()
