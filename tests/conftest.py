"""Shared fixtures: the tiny world-model configuration every end-to-end test trains in seconds.

Tests marked `slow` (end-to-end runs of several seconds) are the complement of the fast lane,
`pytest -m "not slow"`; CI runs both.
"""

from __future__ import annotations

import pytest

from worldjepa.presets import WorldModelPreset, load_config

TINY_WORLD_MODEL = [
    "env.image_size=32",
    "collect.episodes=4",
    "collect.workers=0",
    "world_model.tokens_per_frame=1",
    "world_model.predictor_embed_dim=16",
    "world_model.depth=1",
    "world_model.num_heads=2",
    "world_model.cache_precision=fp32",
    "world_model.train.total_steps=3",
    "world_model.train.batch_size=8",
    "world_model.train.tensorboard=false",
    "world_model.train.progress_bar=false",
    "world_model.proprio_fit.steps=20",
    "world_model.proprio_fit.hidden_dim=16",
    "planner.samples=8",
    "planner.top_k=2",
    "planner.iterations=1",
    "planner.horizon=2",
    "evaluate.episodes=2",
    "evaluate.gif_episodes=1",
    "evaluate.baselines=[random]",
    "evaluate.split=test",
    "world_model.state_readout.steps=20",
    "world_model.state_readout.width=8",
]
TINY_ENCODER = [
    "data.num_frames=4",
    "model.embed_dim=32",
    "model.depth=1",
    "model.num_heads=2",
    "model.predictor_embed_dim=16",
    "model.predictor_depth=1",
    "model.predictor_num_heads=2",
    "train.batch_size=8",
    "train.total_steps=2",
    "train.num_workers=0",
    "train.tensorboard=false",
    "train.progress_bar=false",
]


@pytest.fixture
def tiny_world_model_cfg() -> WorldModelPreset:
    """`wm_arm_reach` shrunk to seconds: 4 episodes at 32 px, a 1-block encoder and predictor."""
    return load_config("wm_arm_reach", [*TINY_WORLD_MODEL, f"encoder.overrides={TINY_ENCODER}"])
