"""Stage 2 of V-JEPA 2-style training: action-conditioned post-training over a frozen encoder.

`run_posttrain(cfg, encoder_run, trajectories, run_dir)`:
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
from typing import Any

from torch import nn

from worldjepa.config import build, load_preset
from worldjepa.data.embedding_cache import EmbeddingClips, build_embedding_cache
from worldjepa.data.trajectories import read_meta
from worldjepa.errors import UserError
from worldjepa.interop.worldjepa_format import CONFIG, load_modules
from worldjepa.methods.ac_posttrain import ACPostTrainConfig, ACPostTraining
from worldjepa.methods.proprio_fit import ProprioFitConfig, cached_transitions, fit_proprio_head
from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.frame_encoder import FrameEncoder
from worldjepa.nn.proprio_head import AdditiveProprio, ProprioHead
from worldjepa.probe import load_pretrained_encoder
from worldjepa.train import distributed
from worldjepa.train.rng import seed_everything
from worldjepa.train.trainer import TrainConfig, Trainer

WORLD_MODEL_DIR = "world_model"


def build_proprio_head(kind: str, state_dim: int, action_dim: int, fit: ProprioFitConfig):
    """`learned` (s + MLP([s, a]), sized by `fit`), `additive` (s + a: for actions that are state deltas)
    or `none`."""
    if kind == "none":
        return None
    if kind == "learned":
        return ProprioHead(state_dim, action_dim, fit.hidden_dim, fit.hidden_layers)
    if kind == "additive":
        return AdditiveProprio(state_dim, action_dim)
    raise UserError(f"world_model.proprio must be learned, additive or none, got {kind!r}")


def load_frozen_encoder(source: Path) -> nn.Module:
    """The stage-1 encoder: a pretraining run folder (its EMA target encoder) or a worldjepa model folder
    holding an `encoder`, e.g. released V-JEPA 2 weights from `worldjepa convert --from official`."""
    if (source / CONFIG).is_file():
        return load_modules(source, ["encoder"], expect={"encoder": "encoder"})["encoder"]
    if not (source / "config.yaml").is_file():
        raise UserError(f"{source} is neither a pretraining run nor a worldjepa model folder with an encoder")
    return load_pretrained_encoder(source, load_preset(str(source / "config.yaml")))


def run_posttrain(
    cfg: dict[str, Any], encoder_run: str | Path, trajectories: str | Path, run_dir: str | Path
):
    """Train the AC predictor of `cfg` (the `world_model` section of a world-model preset); returns the
    `ACWorldModel`, also saved in run_dir/world_model."""
    from worldjepa.world_model import ACWorldModel

    run_dir, encoder_run = Path(run_dir), Path(encoder_run)
    encoder = load_frozen_encoder(encoder_run).requires_grad_(False)
    frames = FrameEncoder(encoder, cfg["tokens_per_frame"])
    train_cfg = build(TrainConfig, cfg["train"], "world_model.train")
    cache = build_embedding_cache(
        trajectories,
        frames,
        run_dir / "embeddings",
        precision=cfg["cache_precision"],
        device=train_cfg.device,
    )
    clips = EmbeddingClips(cache, cfg["context_length"], cfg["frame_skip"])
    if len(clips) == 0:
        raise UserError(
            f"no clip of {cfg['context_length'] + 1} frames in {trajectories}; collect longer episodes"
        )
    meta = read_meta(trajectories)
    seed_everything(train_cfg.seed)  # the weights' initialisation is part of what the seed fixes
    action_dim = meta["action_dim"] * cfg["frame_skip"]
    predictor = ActionConditionedPredictor(
        embed_dim=encoder.norm.normalized_shape[0],
        predictor_embed_dim=cfg["predictor_embed_dim"],
        depth=cfg["depth"],
        num_heads=cfg["num_heads"],
        img_size=frames.grid,  # the predictor's grid is the latent grid: one "patch" per latent token
        patch_size=1,
        action_dim=action_dim,
        state_dim=meta["state_dim"],
    )
    fit_cfg = build(ProprioFitConfig, cfg["proprio_fit"], "world_model.proprio_fit")
    proprio = build_proprio_head(cfg["proprio"], meta["state_dim"], action_dim, fit_cfg)
    method = ACPostTraining(
        predictor,
        frames.grid,
        proprio is not None,
        build(ACPostTrainConfig, cfg["posttrain"], "world_model.posttrain"),
    )
    trainer = Trainer(method, clips, None, train_cfg, run_dir / "predictor", config=cfg)
    try:
        trainer.fit()
    finally:
        distributed.cleanup()
    if isinstance(proprio, ProprioHead):  # every rank fits the same head (same data, same seed)
        transitions = cached_transitions(cache, cfg["frame_skip"])
        errors = fit_proprio_head(proprio, *transitions, fit_cfg, train_cfg.device, train_cfg.progress_bar)
        if trainer.dist.is_main:
            (run_dir / "proprio_head.json").write_text(json.dumps(errors, indent=2) + "\n")
    world_model = ACWorldModel(
        encoder, predictor, proprio, cfg["tokens_per_frame"], precision=cfg["precision"]
    )
    if trainer.dist.is_main:
        world_model.save(run_dir / WORLD_MODEL_DIR)
    return world_model
