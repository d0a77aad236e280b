"""The V-JEPA 2-AC world model as the planners use it: `encode(obs)` and `unroll(latent, actions)`.

encode: pixels -> frozen stage-1 encoder -> (pool) -> layer norm = the frame latent (`FrameEncoder`).
unroll: the action-conditioned predictor, autoregressive over the horizon, one batched step per time
step over all candidates, with a key/value cache (`cached_rollout`): step t runs only its own tokens.
The start latent is encoded once and shared by every candidate. Future states for the predictor's
state tokens come from the proprio head (see `worldjepa.nn.proprio_head`); without a head the model
does not use proprioception and its state tokens are zeros.

`save(dir)` / `ACWorldModel.load(dir)`: `model.safetensors` (weights, no pickle) + `config.json`
(architecture, pooling, image normalisation), our own format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from worldjepa.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from worldjepa.errors import UserError
from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.ac_rollout import cached_rollout
from worldjepa.nn.frame_encoder import FrameEncoder, TokensPerFrame
from worldjepa.nn.proprio_head import build_proprio_head, unroll_states
from worldjepa.nn.vit import VisionTransformer
from worldjepa.planning.world_model import Latent
from worldjepa.train.device import autocast, resolve_device

FORMAT = "worldjepa-ac-world-model"
VERSION = 1
WEIGHTS, CONFIG = "model.safetensors", "config.json"


def vit_config(encoder: VisionTransformer) -> dict[str, Any]:
    """The constructor arguments that rebuild `encoder`'s architecture (weights aside)."""
    block = encoder.blocks[0]
    embed_dim = encoder.norm.normalized_shape[0]
    depth, height, width = encoder.grid
    return {
        "img_size": [height * encoder.patch_size, width * encoder.patch_size],
        "patch_size": encoder.patch_size,
        "in_chans": encoder.in_chans,
        "embed_dim": embed_dim,
        "depth": len(encoder.blocks),
        "num_heads": block.attn.num_heads,
        "mlp_ratio": block.mlp.fc1.out_features / embed_dim,
        "qkv_bias": block.attn.qkv.bias is not None,
        "num_frames": depth * encoder.tubelet_size if encoder.video else 1,
        "tubelet_size": encoder.tubelet_size,
        "pos_embed": "sincos" if encoder.rope is None else "rope",
        "uniform_power": encoder.uniform_power,
        "rope_compat": encoder.rope is not None and encoder.rope.compat,
    }


def ac_predictor_config(predictor: ActionConditionedPredictor) -> dict[str, Any]:
    """The constructor arguments that rebuild `predictor`'s architecture (patch_size 1 keeps its grid)."""
    block = predictor.predictor_blocks[0]
    width = predictor.predictor_embed.out_features
    return {
        "embed_dim": predictor.predictor_embed.in_features,
        "predictor_embed_dim": width,
        "depth": len(predictor.predictor_blocks),
        "num_heads": block.attn.num_heads,
        "img_size": list(predictor.grid),
        "patch_size": 1,
        "action_dim": predictor.action_encoder.in_features,
        "state_dim": predictor.state_encoder.in_features,
        "extrinsics_dim": predictor.extrinsics_encoder.in_features,
        "use_extrinsics": predictor.use_extrinsics,
        "mlp_ratio": block.mlp.fc1.out_features / width,
        "qkv_bias": block.attn.qkv.bias is not None,
        "rope_compat": predictor.rope.compat,
    }


class ACWorldModel:
    """Frozen encoder + AC predictor (+ proprio head) behind the planners' `WorldModel` protocol.

    precision "bf16" runs encode and unroll under bf16 autocast (about 2x faster on CPU); outputs are
    float32 either way. Every module is moved to `device`, frozen and put in eval mode.
    """

    def __init__(
        self,
        encoder: nn.Module,
        predictor: ActionConditionedPredictor,
        proprio_head: nn.Module | None = None,
        tokens_per_frame: TokensPerFrame = "grid",
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
    ) -> None:
        self.device = resolve_device(str(device))
        self.precision = precision
        self.frames = FrameEncoder(encoder, tokens_per_frame, mean, std).to(self.device)
        self.predictor = predictor.to(self.device).eval().requires_grad_(False)
        self.proprio_head = None if proprio_head is None else proprio_head.to(self.device).eval()
        if self.proprio_head is not None:
            self.proprio_head.requires_grad_(False)

    @property
    def use_proprio(self) -> bool:
        return self.proprio_head is not None

    @property
    def grid(self) -> tuple[int, int]:
        """Latent tokens per frame as (h, w)."""
        return self.frames.grid

    @torch.no_grad()
    def encode(self, obs: dict[str, Tensor]) -> Latent:
        """obs: `pixels` uint8 [B, H, W, 3] (or float [B, 3, H, W] in [0, 1]), `state` [B, S] when the model
        uses proprioception -> Latent(visual [B, N, D], proprio [B, S] or None)."""
        with autocast(self.device, self.precision):
            visual = self.frames(obs["pixels"].to(self.device)).float()
        if not self.use_proprio:
            return Latent(visual)
        if obs.get("state") is None:
            raise UserError("this world model uses proprioception: pass obs['state'] [B, S] to encode")
        return Latent(visual, obs["state"].to(self.device, torch.float32))

    @torch.no_grad()
    def unroll(self, latent: Latent, actions: Tensor) -> Latent:
        """latent: one frame, batch 1 (shared by all candidates) or B; actions [B, H, A] ->
        Latent(visual [B, H, N, D], proprio [B, H, S] or None) of steps 1..H."""
        batch, horizon, _ = actions.shape
        if latent.batch_size == 1 and batch > 1:
            latent = latent.expand(batch)
        actions = actions.to(self.device, torch.float32)
        if self.use_proprio:
            states = unroll_states(self.proprio_head, latent.proprio, actions)  # [B, H+1, S]
        else:
            states = actions.new_zeros(batch, horizon + 1, self.predictor.state_encoder.in_features)
        with autocast(self.device, self.precision):
            visual = cached_rollout(self.predictor, latent.visual, actions, states[:, :-1], self.grid)
        return Latent(visual.float(), states[:, 1:] if self.use_proprio else None)

    def save(self, directory: str | Path) -> None:
        """Write `model.safetensors` and `config.json` into `directory`."""
        encoder = self.frames.encoder
        if not isinstance(encoder, VisionTransformer):
            raise UserError(f"save supports a VisionTransformer encoder, got {type(encoder).__name__}")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        parts = {"encoder": encoder, "predictor": self.predictor, "proprio_head": self.proprio_head}
        weights = {
            f"{prefix}.{name}": tensor.detach().cpu().contiguous()
            for prefix, module in parts.items()
            if module is not None
            for name, tensor in module.state_dict().items()
        }
        save_file(weights, str(directory / WEIGHTS))
        config = {
            "format": FORMAT,
            "version": VERSION,
            "encoder": vit_config(encoder),
            "predictor": ac_predictor_config(self.predictor),
            "proprio_head": None if self.proprio_head is None else self.proprio_head.config(),
            "tokens_per_frame": self.frames.tokens_per_frame,
            "mean": list(self.frames.mean),
            "std": list(self.frames.std),
            "precision": self.precision,
        }
        (directory / CONFIG).write_text(json.dumps(config, indent=2))

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> ACWorldModel:
        """Rebuild a saved world model; weights are loaded strictly (every key must match)."""
        directory = Path(directory)
        if not (directory / CONFIG).is_file() or not (directory / WEIGHTS).is_file():
            raise UserError(f"{directory} has no {CONFIG} and {WEIGHTS}; save one with ACWorldModel.save")
        config = json.loads((directory / CONFIG).read_text())
        if config.get("format") != FORMAT or config.get("version") != VERSION:
            raise UserError(f"{directory / CONFIG} is not a {FORMAT} version {VERSION} file")
        weights = load_file(str(directory / WEIGHTS))
        parts: dict[str, nn.Module | None] = {
            "encoder": VisionTransformer(**config["encoder"]),
            "predictor": ActionConditionedPredictor(**config["predictor"]),
            "proprio_head": None
            if config["proprio_head"] is None
            else build_proprio_head(config["proprio_head"]),
        }
        for prefix, module in parts.items():
            if module is not None:
                state = {k[len(prefix) + 1 :]: v for k, v in weights.items() if k.startswith(prefix + ".")}
                module.load_state_dict(state, strict=True)
        return cls(
            parts["encoder"],
            parts["predictor"],
            parts["proprio_head"],
            config["tokens_per_frame"],
            tuple(config["mean"]),
            tuple(config["std"]),
            device,
            config["precision"],
        )
