"""Stage 2, `worldjepa posttrain`: action-conditioned post-training over a frozen encoder (V-JEPA 2-AC).

`run_posttrain(cfg, encoder_source, trajectories, run_dir)`:
1. load the stage-1 encoder (frozen): a pretraining run's EMA target encoder, or a converted model folder
   (so released V-JEPA 2 weights can be post-trained on your own recordings);
2. encode every recorded frame once into an embedding cache (`worldjepa.data.embedding_cache`);
3. train the action-conditioned predictor on cached clips with teacher-forcing and rollout L1 losses
   (`worldjepa.methods.ac_posttrain`) with the shared Trainer;
4. fit the learned proprio head on every recorded transition (`worldjepa.methods.proprio_fit`);
5. fit the state readout on every recorded frame (`worldjepa.methods.state_readout_fit`): how the
   planner reads a goal state from a goal image (models with proprioception);
   with `object_locator` set, the world model tracks an object (`worldjepa.methods.object_tracking`): the
   proprio head and the readout also take the object's recorded state, and the object locator is fitted
   on the frames that show it (`worldjepa.methods.object_locator_fit`);
6. save the world model (`ACWorldModel`: safetensors + config.json, with what it was trained on) in
   run_dir/world_model.

`run_readout_refit` (`worldjepa readout`) fits step 5 anew for a saved world model on other recordings.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from worldjepa.config import to_dict
from worldjepa.data.embedding_cache import EmbeddingClips, build_embedding_cache
from worldjepa.data.trajectories import TrajectoryDataset, read_meta
from worldjepa.errors import UserError
from worldjepa.files import check_new_folder
from worldjepa.interop.pretrain_run import RUN_CONFIG, load_encoder, run_config
from worldjepa.interop.worldjepa_format import save_modules
from worldjepa.methods.ac_posttrain import ACPostTraining
from worldjepa.methods.object_locator_fit import fit_object_locator
from worldjepa.methods.object_tracking import LOCATED, ObjectFrames, recorded_objects
from worldjepa.methods.proprio_fit import cached_transitions, fit_proprio_head
from worldjepa.methods.state_readout_fit import fit_state_readout, recorded_frames
from worldjepa.models import build_encoder
from worldjepa.nn.ac_predictor import ActionConditionedPredictor
from worldjepa.nn.frame_encoder import FrameEncoder
from worldjepa.nn.object_locator import ObjectLocator
from worldjepa.nn.pixel_patches import PixelPatches
from worldjepa.nn.proprio_head import ProprioHead, build_proprio_head
from worldjepa.nn.state_readout import StateReadout
from worldjepa.planning.ac_world_model import ACWorldModel
from worldjepa.presets import PretrainPreset, WorldModelConfig
from worldjepa.train import distributed
from worldjepa.train.device import resolve_device
from worldjepa.train.rng import seed_everything
from worldjepa.train.trainer import Trainer

WORLD_MODEL_DIR = "world_model"


def proprio_head(
    cfg: WorldModelConfig, state_dim: int, action_dim: int, frame_dim: int
) -> ProprioHead | None:
    """The configured proprio head (None for `proprio: none`); frame_dim: values in one frame latent."""
    if cfg.proprio == "none":
        return None
    fit = cfg.proprio_fit
    if cfg.proprio != "learned":
        learned_only = [name for name in ("per_move", "frame_context") if getattr(fit, name)]
        if learned_only:
            raise UserError(
                f"world_model.proprio_fit.{learned_only[0]} needs the learned proprio head (proprio: learned)"
            )
        return build_proprio_head({"kind": cfg.proprio, "state_dim": state_dim, "action_dim": action_dim})
    return ProprioHead(
        state_dim,
        action_dim,
        fit.hidden_dim,
        fit.hidden_layers,
        context_dim=frame_dim if fit.frame_context else 0,
        moves=cfg.frame_skip if fit.per_move else 1,
    )


def run_posttrain(
    cfg: WorldModelConfig,
    encoder_source: str | Path,
    trajectories: str | Path,
    run_dir: str | Path,
    overwrite: bool = False,
) -> ACWorldModel:
    """Train the AC predictor of `cfg` on `trajectories` over the frozen encoder in `encoder_source`;
    returns the `ACWorldModel`, also saved in run_dir/world_model (an existing one is replaced only with
    `overwrite`, refused before any work otherwise)."""
    run_dir = Path(run_dir)
    check_new_folder(run_dir / WORLD_MODEL_DIR, overwrite, "model folder")
    meta = read_meta(trajectories)
    tracks = cfg.object_locator is not None
    if tracks and not meta.get("object_dim"):
        raise UserError(
            f"world_model.object_locator tracks an object, but {trajectories} records no object states: "
            "collect the data again with this worldjepa"
        )
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
    seed_everything(cfg.train.seed)  # the weights' initialisation is part of what the seed fixes
    action_dim = meta["action_dim"] * cfg.frame_skip
    shape = cfg.predictor_shape
    predictor = ActionConditionedPredictor(
        embed_dim=encoder.embed_dim,
        predictor_embed_dim=shape.embed_dim,
        depth=shape.depth,
        num_heads=shape.heads,
        img_size=frames.grid,  # the predictor's grid is the latent grid: one "patch" per latent token
        patch_size=1,
        action_dim=action_dim,
        state_dim=meta["state_dim"],
    )
    head_dim = meta["state_dim"] + (meta["object_dim"] + LOCATED if tracks else 0)
    proprio = proprio_head(cfg, head_dim, action_dim, frames.grid[0] * frames.grid[1] * encoder.embed_dim)
    method = ACPostTraining(predictor, frames.grid, proprio is not None, cfg.posttrain)
    trainer = Trainer(method, clips, None, cfg.train, run_dir / "predictor", config=to_dict(cfg))
    try:
        trainer.fit()
    finally:
        distributed.cleanup()
    # every rank fits the same heads (same data, same seed)
    report_dir = run_dir if trainer.dist.is_main else None
    objects = locator = None
    if tracks:
        objects, transitions = recorded_objects(trajectories, cfg.frame_skip // proprio.moves)
    elif isinstance(proprio, ProprioHead):
        transitions = cached_transitions(cache, cfg.frame_skip // proprio.moves, bool(proprio.context_dim))
    if isinstance(proprio, ProprioHead):
        states, actions, next_states, latents = transitions
        errors = fit_proprio_head(
            proprio,
            states,
            actions,
            next_states,
            cfg.proprio_fit,
            cfg.train.device,
            cfg.train.progress_bar,
            latents,
        )
        write_report(report_dir, "proprio_head.json", errors)
    readout = None
    if proprio is not None:
        readout = fit_readout(cfg, frames, trajectories, report_dir, objects)
    if objects is not None:
        locator = fit_locator(cfg, frames, objects, report_dir)
    world_model = ACWorldModel(
        encoder,
        predictor,
        proprio,
        cfg.tokens_per_frame,
        precision=cfg.precision,
        state_readout=readout,
        trained_on={**trained_on_data(trajectories, encoder_source), "frame_skip": cfg.frame_skip},
        object_locator=locator,
    )
    if trainer.dist.is_main:
        world_model.save(run_dir / WORLD_MODEL_DIR, overwrite)
    return world_model


def fit_readout(
    cfg: WorldModelConfig,
    frames: FrameEncoder,
    trajectories: str | Path,
    report_dir: Path | None,
    objects: ObjectFrames | None = None,
) -> StateReadout:
    """A state readout fitted as `cfg.state_readout` says on every frame of `trajectories` (with `objects`:
    on the frames that show the object, reading the proprio and the object's state), taking the world
    model's own input normalisation (`frames`); its held-out error goes to report_dir/state_readout.json
    (None: not written)."""
    if objects is None:
        pictures, states, episodes = recorded_frames(trajectories)
    else:
        pictures, states, episodes = (
            objects.frames,
            torch.cat([objects.proprio, objects.objects], 1),
            objects.episodes,
        )
    readout = cfg.state_readout.build(states.shape[1], frames.image_size[0])
    errors = fit_state_readout(
        readout,
        pictures,
        states,
        episodes,
        frames.pixels_to_input,
        cfg.state_readout,
        cfg.train.device,
        cfg.train.progress_bar,
    )
    write_report(report_dir, "state_readout.json", errors)
    return readout


def fit_locator(
    cfg: WorldModelConfig, frames: FrameEncoder, objects: ObjectFrames, report_dir: Path | None
) -> ObjectLocator:
    """The object locator fitted as `cfg.object_locator` says on the frames that show the object: from the
    image (the world model's input normalisation, `frames`) and the robot's proprio to the object's
    located values; its held-out error goes to report_dir/object_locator.json (None: not written)."""
    fit = cfg.object_locator
    locator = fit.build(LOCATED, objects.proprio.shape[1])
    errors = fit_object_locator(
        locator,
        objects.frames,
        objects.proprio,
        objects.objects[:, :LOCATED],
        objects.episodes,
        frames.pixels_to_input,
        fit,
        cfg.train.device,
        cfg.train.progress_bar,
    )
    write_report(report_dir, "object_locator.json", errors)
    return locator


def write_report(report_dir: Path | None, name: str, errors: dict) -> None:
    """A fit's held-out errors as report_dir/name (None: not written)."""
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / name).write_text(json.dumps(errors, indent=2) + "\n")


def run_readout_refit(
    cfg: WorldModelConfig,
    model_dir: str | Path,
    trajectories: str | Path,
    run_dir: str | Path,
    overwrite: bool = False,
) -> ACWorldModel:
    """The world model in `model_dir` with its state readout fitted anew on `trajectories` (e.g. the same
    scene with randomised lights, or recordings in a new scene), encoder, predictor and proprio head kept;
    saved in run_dir/world_model. Its training seeds gain those of `trajectories`, so no evaluation can
    run on an episode the new readout saw."""
    run_dir = Path(run_dir)
    check_new_folder(run_dir / WORLD_MODEL_DIR, overwrite, "model folder")
    world_model = ACWorldModel.load(model_dir, device=resolve_device(cfg.train.device))
    if not world_model.use_proprio:
        raise UserError(f"{model_dir} plans without proprioception: it has no state readout to fit")
    meta, trained = read_meta(trajectories), world_model.trained_on
    if "seeds" not in trained:
        raise UserError(
            f"{model_dir} does not record the seeds of its training data (made by an older worldjepa), so the "
            "new readout's seeds could not join them; re-run posttrain"
        )
    mismatched = {
        key: (trained[key], meta[key])
        for key in ("env_id", "state_dim", "image_size")
        if key in trained and trained[key] != meta[key]  # both as JSON has them (image_size a list)
    }
    if mismatched:
        details = ", ".join(f"{key}: model {old!r}, data {new!r}" for key, (old, new) in mismatched.items())
        raise UserError(f"{trajectories} is not recorded like the world model's data ({details})")
    objects = recorded_objects(trajectories)[0] if world_model.tracks_objects else None
    world_model.state_readout = fit_readout(cfg, world_model.frames, trajectories, run_dir, objects)
    seeds = set(trained["seeds"]) | set(TrajectoryDataset(trajectories, clip_length=1).episode_seeds)
    world_model.trained_on = {**trained, "seeds": sorted(seeds)}
    world_model.save(run_dir / WORLD_MODEL_DIR, overwrite)
    return world_model


def save_ablation_encoder(kind: str, stage1: PretrainPreset, directory: Path) -> Path:
    """The encoder of an ablation, as a model folder: `random`, a random-init encoder of stage 1's shape
    (seeded by its train.seed: stage 1 skipped), or `pixels`, raw pixel patches of its patch size."""
    if kind == "random":
        seed_everything(stage1.train.seed)
        encoder = build_encoder(stage1.model, stage1.data.image_size, stage1.num_frames)
    elif kind == "pixels":
        encoder = PixelPatches(stage1.data.image_size, stage1.model.patch_size)
    else:
        raise UserError(f"unknown ablation encoder {kind!r}; use random or pixels")
    save_modules(directory, {"encoder": encoder}, overwrite=True)  # the same weights each time
    return directory


def stage1_seeds(encoder_source: str | Path) -> set[int]:
    """The reset seeds of every trajectory folder a pretraining run learned from (none for another
    dataset, an ablation encoder, or folders no longer on disk)."""
    if not (Path(encoder_source) / RUN_CONFIG).is_file():
        return set()
    data = run_config(encoder_source).data
    if data.dataset != "trajectories":
        return set()
    folders = [root for root in data.roots() if root.is_dir()]
    return {seed for root in folders for seed in TrajectoryDataset(root, clip_length=1).episode_seeds}


def trained_on_data(trajectories: str | Path, encoder_source: str | Path) -> dict:
    """What a world model is for: the env, action and state sizes and image size of its stage-2 data,
    and the reset seeds of every episode it saw (stage 2's data, and stage 1's when it was a trajectory
    folder), so evaluation can refuse another env and seeds it has seen."""
    meta = read_meta(trajectories)
    seeds = set(TrajectoryDataset(trajectories, clip_length=1).episode_seeds) | stage1_seeds(encoder_source)
    return {
        "env_id": meta["env_id"],
        "action_dim": meta["action_dim"],
        "state_dim": meta["state_dim"],
        "image_size": list(meta["image_size"]),
        "seeds": sorted(seeds),
    }
