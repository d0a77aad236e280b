"""Running the action-conditioned predictor over time: teacher forcing and autoregressive rollouts.

Every prediction is layer-normed (no affine), as the official `normalize_reps`, so predictions live in
the space of the layer-normed frame latents they are compared with and fed back as.

Two rollouts give the same numbers:
- `rollout` re-runs the whole growing sequence at every step (the official way). Training uses it:
  plain, and gradients flow through every fed-back prediction.
- `cached_rollout` runs only the newest step against cached keys/values (`ActionConditionedPredictor.step`).
  Planning uses it: H steps cost H step-sized forwards instead of 1 + 2 + ... + H.

Shapes: frames [B, T, N, D] (N tokens per frame on `grid`), actions [B, T, A], states [B, T, S].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.attention import KVCache


def _norm(x: Tensor) -> Tensor:
    return F.layer_norm(x, x.shape[-1:])


def predict_next(
    predictor: ActionConditionedPredictor,
    frames: Tensor,
    actions: Tensor,
    states: Tensor,
    grid: tuple[int, int],
) -> Tensor:
    """Teacher forcing: frames 0..T-1 [B, T, N, D] -> predictions of frames 1..T [B, T, N, D].

    Block-causal attention: prediction t uses frames, actions and states of steps <= t only.
    """
    out = predictor(frames.flatten(1, 2), actions, states, grid=grid)
    return _norm(out).unflatten(1, frames.shape[1:3])


def rollout(
    predictor: ActionConditionedPredictor,
    frames: Tensor,
    actions: Tensor,
    states: Tensor,
    steps: int,
    grid: tuple[int, int],
) -> Tensor:
    """Append `steps` predicted frames to frames [B, T0, N, D], each predicted from the sequence so far
    (the model's own earlier predictions included) -> [B, steps, N, D].

    actions, states: [B, >= T0 + steps - 1, *]; step t uses actions[:, t] and states[:, t].
    """
    for _ in range(steps):
        t = frames.shape[1]
        nxt = predict_next(predictor, frames, actions[:, :t], states[:, :t], grid)[:, -1:]
        frames = torch.cat([frames, nxt], dim=1)
    return frames[:, frames.shape[1] - steps :]


def cached_rollout(
    predictor: ActionConditionedPredictor,
    start: Tensor,
    actions: Tensor,
    states: Tensor,
    grid: tuple[int, int],
) -> Tensor:
    """start [B, N, D] (frame 0), actions [B, H, A], states [B, H, S] -> predicted frames 1..H [B, H, N, D].

    Same result as `rollout(predictor, start[:, None], actions, states, H, grid)`.
    """
    cache: KVCache = []
    frame, predicted = start, []
    for t in range(actions.shape[1]):
        frame = _norm(predictor.step(frame, actions[:, t], states[:, t], cache, grid=grid))
        predicted.append(frame)
    return torch.stack(predicted, dim=1)
