"""Bring any Gymnasium env that renders `rgb_array` into the worldjepa observation format.

This is how users point data collection and world-model training at their own simulators without
writing a worldjepa env. Generic envs have no goal, so `success` is always False and `distance` NaN.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np

from worldjepa.envs.base import GoalEnv, check_action
from worldjepa.errors import UserError


@lru_cache(maxsize=16)
def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] matrix: each output pixel averages the input pixels it overlaps, by overlap length.
    Down-sampling is an exact area average; up-sampling degrades gracefully to near-nearest."""
    edges_out = np.linspace(0.0, n_in, n_out + 1)
    lo, hi = edges_out[:-1, None], edges_out[1:, None]
    src = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, src + 1) - np.maximum(lo, src), 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def area_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a uint8 [H, W, C] image with area averaging (no torchvision, no PIL)."""
    if image.shape[:2] == (height, width):
        return image
    wy = _area_weights(image.shape[0], height)
    wx = _area_weights(image.shape[1], width)
    h, w, c = image.shape
    rows = (wy @ image.astype(np.float32).reshape(h, w * c)).reshape(height, w, c)  # two BLAS products,
    out = wx @ rows  # [width, w] @ [height, w, c] -> [height, width, c]; one einsum would loop naively
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


class GymPixelsAdapter(gym.Env, GoalEnv):
    """`GymPixelsAdapter(gym.make(id, render_mode="rgb_array"))`: pixels from `render()` resized to
    `image_size`, state = the flat observation if it is a Box (else empty); Box actions only."""

    def __init__(self, env: gym.Env, image_size: int = 64) -> None:
        if getattr(env, "render_mode", None) != "rgb_array":
            raise UserError("GymPixelsAdapter needs an env made with render_mode='rgb_array'")
        if not isinstance(env.action_space, gym.spaces.Box):
            raise UserError(
                "GymPixelsAdapter supports continuous (Box) actions only, "
                f"got {type(env.action_space).__name__}"
            )
        self.env = env
        self.image_size = int(image_size)
        self.render_mode = "rgb_array"
        obs_space = env.observation_space
        self._has_state = isinstance(obs_space, gym.spaces.Box)
        state_dim = int(np.prod(obs_space.shape)) if self._has_state else 0
        s = self.image_size
        self.observation_space = gym.spaces.Dict(
            pixels=gym.spaces.Box(0, 255, (s, s, 3), np.uint8),
            state=gym.spaces.Box(-np.inf, np.inf, (state_dim,), np.float32),
        )
        low, high = env.action_space.low, env.action_space.high
        self.action_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    def _observation(self, obs: Any) -> dict[str, np.ndarray]:
        frame = np.asarray(self.env.render())[..., :3]
        state = np.asarray(obs, np.float32).reshape(-1) if self._has_state else np.zeros(0, np.float32)
        return {"pixels": area_resize(frame, self.image_size, self.image_size), "state": state}

    @staticmethod
    def _info(info: dict[str, Any]) -> dict[str, Any]:
        return {**info, "success": False, "distance": float("nan")}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._observation(obs), self._info(info)

    def step(self, action):
        a = check_action(action, self.action_space).astype(self.env.action_space.dtype)
        obs, reward, terminated, truncated, info = self.env.step(a)
        return self._observation(obs), float(reward), terminated, truncated, self._info(info)

    def render(self) -> np.ndarray:
        return area_resize(np.asarray(self.env.render())[..., :3], self.image_size, self.image_size)

    def close(self) -> None:
        self.env.close()
