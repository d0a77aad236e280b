"""Stage 2, `worldjepa posttrain`: action-conditioned post-training over a frozen encoder (V-JEPA 2-AC).

`run_posttrain(cfg, encoder_source, trajectories, run_dir)`:
1. load the stage-1 encoder (frozen): a pretraining run's EMA target encoder, or a converted model folder
   (so released V-JEPA 2 weights can be post-trained on your own recordings);
2. encode every recorded frame once into an embedding cache (`worldjepa.data.embedding_cache`);
3. train the action-conditioned predictor on cached clips with teacher-forcing and rollout L1 losses
   (`worldjepa.methods.ac_posttrain`) with the shared Trainer;
4. fit the learned proprio head on every recorded transition (`worldjepa.methods.proprio_fit`);
5. save the world model (`ACWorldModel`: safetensors + config.json) in run_dir/world_model.
"""

from __future__ import annotations

import json
from pathlib import Path

from worldjepa.config import to_dict
from worldjepa.data.embedding_cache import EmbeddingClips, build_embedding_cache
from worldjepa.data.trajectories import read_meta
from worldjepa.errors import UserError
from worldjepa.interop.pretrain_run import load_encoder
from worldjepa.methods.ac_posttrain import ACPostTraining
from worldjepa.methods.proprio_fit import cached_transitions, fit_proprio_head
from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.frame_encoder import FrameEncoder
from worldjepa.nn.proprio_head import ProprioHead, build_proprio_head
from worldjepa.planning.ac_world_model import ACWorldModel
from worldjepa.presets import WorldModelConfig
from worldjepa.train import distributed
from worldjepa.train.device import resolve_device
from worldjepa.train.rng import seed_everything
from worldjepa.train.trainer import Trainer

WORLD_MODEL_DIR = "world_model"


def proprio_head(cfg: WorldModelConfig, state_dim: int, action_dim: int) -> ProprioHead | None:
    """The configured proprio head (None for `proprio: none`)."""
    if cfg.proprio == "none":
        return None
    sizes = {"hidden_dim": cfg.proprio_fit.hidden_dim, "hidden_layers": cfg.proprio_fit.hidden_layers}
    extra = sizes if cfg.proprio == "learned" else {}
    return build_proprio_head(
        {"kind": cfg.proprio, "state_dim": state_dim, "action_dim": action_dim, **extra}
    )


def run_posttrain(
    cfg: WorldModelConfig, encoder_source: str | Path, trajectories: str | Path, run_dir: str | Path
) -> ACWorldModel:
    """Train the AC predictor of `cfg` on `trajectories` over the frozen encoder in `encoder_source`;
    returns the `ACWorldModel`, also saved in run_dir/world_model."""
    run_dir = Path(run_dir)
    encoder = load_encoder(encoder_source).requires_grad_(False)
    frames = FrameEncoder(encoder, cfg.tokens_per_frame)
    device = resolve_device(cfg.train.device)
    cache = build_embedding_cache(
        trajectories, frames, run_dir / "embeddings", precision=cfg.cache_precision, device=device
    )
    clips = EmbeddingClips(cache, cfg.context_length, cfg.frame_skip)
    if len(clips) == 0:
        raise UserError(
            f"no clip of {cfg.context_length + 1} frames in {trajectories}; collect longer episodes"
        )
    meta = read_meta(trajectories)
    seed_everything(cfg.train.seed)  # the weights' initialisation is part of what the seed fixes
    action_dim = meta["action_dim"] * cfg.frame_skip
    shape = cfg.predictor_shape
    predictor = ActionConditionedPredictor(
        embed_dim=encoder.norm.normalized_shape[0],
        predictor_embed_dim=shape.embed_dim,
        depth=shape.depth,
        num_heads=shape.heads,
        img_size=frames.grid,  # the predictor's grid is the latent grid: one "patch" per latent token
        patch_size=1,
        action_dim=action_dim,
        state_dim=meta["state_dim"],
    )
    proprio = proprio_head(cfg, meta["state_dim"], action_dim)
    method = ACPostTraining(predictor, frames.grid, proprio is not None, cfg.posttrain)
    trainer = Trainer(method, clips, None, cfg.train, run_dir / "predictor", config=to_dict(cfg))
    try:
        trainer.fit()
    finally:
        distributed.cleanup()
    if isinstance(proprio, ProprioHead):  # every rank fits the same head (same data, same seed)
        transitions = cached_transitions(cache, cfg.frame_skip)
        errors = fit_proprio_head(
            proprio, *transitions, cfg.proprio_fit, cfg.train.device, cfg.train.progress_bar
        )
        if trainer.dist.is_main:
            (run_dir / "proprio_head.json").write_text(json.dumps(errors, indent=2) + "\n")
    world_model = ACWorldModel(encoder, predictor, proprio, cfg.tokens_per_frame, precision=cfg.precision)
    if trainer.dist.is_main:
        world_model.save(run_dir / WORLD_MODEL_DIR)
    return world_model
