"""The V-JEPA 2-AC world model as the planners use it: `encode(obs)` and `unroll(latent, actions)`.

encode: pixels -> frozen stage-1 encoder -> (pool) -> layer norm = the frame latent (`FrameEncoder`).
unroll: the action-conditioned predictor, autoregressive over the horizon, one batched step per time
step over all candidates, with a key/value cache (`cached_rollout`): step t runs only its own tokens.
The start latent is encoded once and shared by every candidate. Future states for the predictor's
state tokens come from the proprio head (see `worldjepa.nn.proprio_head`); without a head the model
does not use proprioception and its state tokens are zeros.
encode_goal: a goal image -> its latent, with the goal state read from the image by the state readout
(`worldjepa.nn.state_readout`, a small network fitted on the training frames after stage 2): the
planning protocol gives the planner goal images only (`worldjepa.planning.goal`). A pair readout reads
the goal state relative to the current observation (its state + the change it reads from the current
image to the goal image), so the agent encodes the goal against each new observation
(`goal_state_follows_current`).

A world model with an object locator tracks an object (Push's block; `worldjepa.methods.object_tracking`):
its state is the robot's proprio, then the object's state, then how far the object moved. `encode` reads
the object from the camera image (its x, y with the locator, the rest with the state readout) and its
motion from the previous encoded observation (the agent passes it), `encode_goal` reads the object in the
goal image with the readout, the proprio head rolls the whole state forward, and the predictor's state
tokens take the proprio alone.

`trained_on` records what the model was trained for (env id, action / state sizes, image size, frame
skip, the reset seeds of its training episodes), so that evaluation can refuse another env and seeds
it has seen.

`save(dir)` / `ACWorldModel.load(dir)`: the worldjepa model folder (`model.safetensors`, no pickle, +
`config.json` with the architectures, pooling and image normalisation; `worldjepa.interop.worldjepa_format`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from worldjepa.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from worldjepa.errors import UserError
from worldjepa.interop.worldjepa_format import load_modules, read_config, save_modules
from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.ac_rollout import cached_rollout
from worldjepa.nn.frame_encoder import FrameEncoder, TokensPerFrame
from worldjepa.nn.object_locator import ObjectLocator
from worldjepa.nn.pixel_patches import PixelPatches
from worldjepa.nn.proprio_head import unroll_states
from worldjepa.nn.state_readout import StateReadout
from worldjepa.nn.vit import VisionTransformer
from worldjepa.planning.goal import Goal, PrivilegedGoal
from worldjepa.planning.world_model import Latent
from worldjepa.train.device import autocast, resolve_device


class ACWorldModel:
    """Frozen encoder + AC predictor (+ proprio head, state readout, object locator) behind the planners'
    `WorldModel` protocol.

    precision "bf16" runs encode and unroll under bf16 autocast where the device computes bf16 natively
    (about 2x faster on such a CPU; `worldjepa.train.device.native_bf16`); outputs are
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
        state_readout: StateReadout | None = None,
        trained_on: dict[str, Any] | None = None,
        object_locator: ObjectLocator | None = None,
    ) -> None:
        self.device = resolve_device(str(device))
        self.precision = precision
        self.frames = FrameEncoder(encoder, tokens_per_frame, mean, std).to(self.device)
        self.predictor = predictor.to(self.device).eval().requires_grad_(False)
        self.proprio_head, self.state_readout, self.object_locator = (
            None if head is None else head.to(self.device).eval().requires_grad_(False)
            for head in (proprio_head, state_readout, object_locator)
        )
        if object_locator is not None and (
            state_readout is None or state_readout.pair or proprio_head is None
        ):
            raise UserError(
                "a world model that tracks an object needs a proprio head and a (single-frame) state readout"
            )
        self.trained_on = trained_on or {}

    @property
    def use_proprio(self) -> bool:
        return self.proprio_head is not None

    @property
    def action_dim(self) -> int:
        """Values per predictor step: k * A for a model trained with frame skip k on A-D env actions."""
        return self.predictor.action_encoder.in_features

    @property
    def grid(self) -> tuple[int, int]:
        """Latent tokens per frame as (h, w)."""
        return self.frames.grid

    @property
    def tracks_objects(self) -> bool:
        """Whether the model tracks an object: then `encode` takes the previous encoded observation."""
        return self.object_locator is not None

    @torch.no_grad()
    def embed(self, pixels: Tensor) -> Tensor:
        """Frame latents of images (uint8 [B, H, W, 3] or float [B, 3, H, W] in [0, 1]) -> [B, N, D] float32:
        the frozen encoder, pooled and layer-normed, as the predictor and the energy see them."""
        with autocast(self.device, self.precision):
            return self.frames(pixels.to(self.device)).float()

    @torch.no_grad()
    def encode(self, obs: dict[str, Tensor], previous: Latent | None = None, steps: int = 1) -> Latent:
        """obs: `pixels` uint8 [B, H, W, 3] (or float [B, 3, H, W] in [0, 1]), `state` [B, S] when the model
        uses proprioception -> Latent(visual [B, N, D], proprio [B, S] or None). A model that tracks an
        object reads it from the image; its motion per env action is its move since `previous`, the latent
        encoded `steps` env actions before (None: at rest)."""
        pixels = obs["pixels"].to(self.device)
        visual = self.embed(pixels)
        if not self.use_proprio:
            return Latent(visual)
        if obs.get("state") is None:
            raise UserError("this world model uses proprioception: pass obs['state'] [B, S] to encode")
        proprio = obs["state"].to(self.device, torch.float32)
        if not self.tracks_objects:
            return Latent(visual, proprio)
        frames = self.frames.pixels_to_input(pixels)
        start, located = proprio.shape[1], self.object_locator(frames, proprio)
        objects = torch.cat([located, self.state_readout(frames)[:, start + located.shape[1] :]], dim=1)
        moved = torch.zeros_like(located)
        if previous is not None:
            moved = (located - previous.proprio[:, start : start + located.shape[1]]) / steps
        return Latent(visual, torch.cat([proprio, objects, moved], dim=1))

    @property
    def goal_state_follows_current(self) -> bool:
        """Whether the goal state is read relative to the current observation (a pair state readout): then
        `encode_goal` needs it, and the agent encodes the goal again at every re-plan."""
        return self.use_proprio and self.state_readout is not None and self.state_readout.pair

    @torch.no_grad()
    def read_state(self, pixels: Tensor, reference: dict[str, Tensor] | None = None) -> Tensor | None:
        """The state the state readout reads from images (uint8 [B, H, W, 3]) -> [B, S]; None without one.
        A pair readout reads it relative to `reference` (`pixels` [B|1, H, W, 3] and `state` [B|1, S]):
        the reference's state plus the change it reads from the reference image to the image."""
        if self.state_readout is None:
            return None
        frames = self.frames.pixels_to_input(pixels.to(self.device))
        if not self.state_readout.pair:
            return self.state_readout(frames)
        if reference is None:
            raise UserError("this world model reads goal states relative to the current observation: pass it")
        before = self.frames.pixels_to_input(reference["pixels"].to(self.device)).expand_as(frames)
        return reference["state"].to(self.device, torch.float32) + self.state_readout(frames, before)

    @torch.no_grad()
    def encode_goal(self, goal: Goal, current: dict[str, Tensor] | None = None) -> Latent:
        """A goal image -> Latent(visual [1, N, D], the goal state [1, S] read from the image by the state
        readout; None without a readout or proprioception). A pair readout reads it relative to `current`
        (the observation planned from, `pixels` [1, H, W, 3] and `state` [1, S]). A `PrivilegedGoal`
        (reference rows only) brings the simulator's goal state of the robot instead. A tracked object is
        read from the goal image, at rest."""
        pixels = torch.from_numpy(np.ascontiguousarray(goal.image))[None].to(self.device)
        visual = self.embed(pixels)
        if not self.use_proprio:
            return Latent(visual)
        if not isinstance(goal, PrivilegedGoal):
            read = self.read_state(pixels, current)
        elif self.tracks_objects:  # the simulator's state of the robot, the object's still read
            state = torch.as_tensor(goal.state, dtype=torch.float32, device=self.device)[None]
            read = torch.cat([state, self.read_state(pixels)[:, state.shape[1] :]], dim=1)
        else:
            return Latent(visual, torch.as_tensor(goal.state, dtype=torch.float32, device=self.device)[None])
        if self.tracks_objects:  # the goal's object at rest
            read = torch.cat([read, read.new_zeros(1, self.object_locator.out_dim)], dim=1)
        return Latent(visual, read)

    @torch.no_grad()
    def unroll(self, latent: Latent, actions: Tensor, frames: bool = True) -> Latent:
        """latent: one frame, batch 1 (shared by all candidates) or B; actions [B, H, A] ->
        Latent(visual [B, H, N, D], proprio [B, H, S] or None) of steps 1..H. `frames=False` (for an
        energy that scores states alone) runs the proprio head only and holds the start frame."""
        batch, horizon, _ = actions.shape
        if latent.batch_size == 1 and batch > 1:
            latent = latent.expand(batch)
        actions = actions.to(self.device, torch.float32)
        if self.use_proprio:
            context = latent.visual.flatten(1) if self.proprio_head.context_dim else None
            states = unroll_states(self.proprio_head, latent.proprio, actions, context)  # [B, H+1, S]
        else:
            states = actions.new_zeros(batch, horizon + 1, self.predictor.state_encoder.in_features)
        if not frames:
            visual = latent.visual[:, None].expand(batch, horizon, *latent.visual.shape[1:])
            return Latent(visual, states[:, 1:] if self.use_proprio else None)
        with autocast(self.device, self.precision):
            proprio = states[:, :-1, : self.predictor.state_encoder.in_features]  # without a tracked object
            visual = cached_rollout(self.predictor, latent.visual, actions, proprio, self.grid)
        return Latent(visual.float(), states[:, 1:] if self.use_proprio else None)

    def save(self, directory: str | Path, overwrite: bool = False) -> None:
        """Write the worldjepa model folder (`worldjepa.interop.worldjepa_format`): weights + config.json;
        an existing folder is replaced only with `overwrite`."""
        if not isinstance(self.frames.encoder, VisionTransformer | PixelPatches):
            raise UserError(
                f"save supports a VisionTransformer encoder (or raw pixel patches), got {type(self.frames.encoder).__name__}"
            )
        modules = {"encoder": self.frames.encoder, "predictor": self.predictor}
        heads = {
            "proprio_head": self.proprio_head,
            "state_readout": self.state_readout,
            "object_locator": self.object_locator,
        }
        modules |= {name: head for name, head in heads.items() if head is not None}
        world_model = {
            "tokens_per_frame": self.frames.tokens_per_frame,
            "mean": list(self.frames.mean),
            "std": list(self.frames.std),
            "precision": self.precision,
            "trained_on": self.trained_on,
        }
        save_modules(directory, modules, overwrite=overwrite, world_model=world_model)

    @classmethod
    def load(
        cls, directory: str | Path, device: str | torch.device = "cpu", precision: str | None = None
    ) -> ACWorldModel:
        """Rebuild a saved world model; weights are loaded strictly (every key must match).
        precision: fp32 | bf16 for encode / unroll; None keeps the saved one."""
        config = read_config(directory)
        if "world_model" not in config:
            raise UserError(f"{directory} holds {', '.join(config['modules'])}, not an AC world model")
        expect = {"encoder": ("encoder", "pixel_patches"), "predictor": "ac_predictor"}
        modules = load_modules(directory, expect=expect)
        wm = config["world_model"]
        return cls(
            modules["encoder"],
            modules["predictor"],
            modules.get("proprio_head"),
            wm["tokens_per_frame"],
            tuple(wm["mean"]),
            tuple(wm["std"]),
            device,
            precision or wm["precision"],
            modules.get("state_readout"),
            wm.get("trained_on"),
            modules.get("object_locator"),
        )
