"""`worldjepa demo`: perception -> world model -> planning -> action, in a closed loop, on one CPU.

The pipeline above the stages: with a world-model preset (default `wm_arm_reach`) it runs each stage of
`worldjepa.stages` in a row into one run folder, skipping stages whose output is already there (so a
killed demo picks up where it stopped):

    data/        trajectories recorded by random and noisy scripted policies   (`worldjepa collect`)
    encoder/     stage 1: action-free V-JEPA 2-style pretraining on that video  (`worldjepa pretrain`)
    world_model/ stage 2: the action-conditioned predictor over the frozen encoder (`worldjepa posttrain`)
    eval/        closed-loop planning toward goal images: GIFs, plot, success table (`worldjepa evaluate`)

`--model DIR` skips training and plans with a saved world model (e.g. the one shipped in
`checkpoints/`, produced by this same command).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from worldjepa.data.trajectories import check_env
from worldjepa.presets import WorldModelPreset
from worldjepa.stages.collect import run_collect
from worldjepa.stages.evaluate import format_table, run_evaluate
from worldjepa.stages.posttrain import WORLD_MODEL_DIR, run_posttrain
from worldjepa.stages.pretrain import run_pretrain

#: World models shipped with the repository, by the preset that made them with `worldjepa demo --train`
#: (see checkpoints/README.md); a preset without one trains every stage.
SHIPPED_MODELS = {"wm_arm_reach": Path(__file__).resolve().parents[2] / "checkpoints" / "arm_reach"}


def run_demo(cfg: WorldModelPreset, run_dir: str | Path, model_dir: str | Path | None = None) -> str:
    """Run (or resume) every stage of `cfg` in `run_dir`; returns the evaluation table."""
    run_dir = Path(run_dir)
    data_dir = run_dir / "data"
    timings: dict[str, float] = {}
    if model_dir is not None:
        world_model, data_dir = Path(model_dir), None
    else:
        stage1 = cfg.stage1(data_dir)  # the encoder preset and its overrides, checked before any work
        _check_planner(cfg)
        if (data_dir / "meta.json").is_file():  # a run dir of another preset: its data is not this env's
            check_env(data_dir, cfg.env.id, cfg.env.image_size)
        if not (data_dir / "meta.json").is_file():
            tic = time.perf_counter()
            print(f"[1/4] collecting {cfg.collect.episodes} episodes of {cfg.env.id}")
            run_collect(cfg.env, cfg.collect, data_dir)
            timings["collect"] = time.perf_counter() - tic
        encoder_dir = run_dir / "encoder"
        tic = time.perf_counter()
        print("[2/4] stage 1: action-free encoder pretraining (V-JEPA 2 style) on the recorded video")
        stage1.train.resume = True  # a finished run returns at once; a killed one continues
        run_pretrain(stage1, encoder_dir)
        timings["stage 1"] = time.perf_counter() - tic
        world_model = run_dir / WORLD_MODEL_DIR
        if not (world_model / "config.json").is_file():
            tic = time.perf_counter()
            print("[3/4] stage 2: action-conditioned post-training on cached frame latents")
            resumable = replace(cfg.world_model, train=replace(cfg.world_model.train, resume=True))
            run_posttrain(resumable, encoder_dir, data_dir, run_dir)
            timings["stage 2"] = time.perf_counter() - tic
    print(f"[4/4] planning toward goal images: {cfg.evaluate.episodes} episodes of {cfg.env.id}")
    tic = time.perf_counter()
    reports = run_evaluate(world_model, cfg, run_dir / "eval", data_dir)
    timings["evaluate"] = time.perf_counter() - tic
    spent = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
    table = format_table(reports)
    return f"{table}\n\nwall time: {spent}\nepisode GIFs: {run_dir / 'eval' / 'world_model'}"


def _check_planner(cfg: WorldModelPreset) -> None:
    """Build the planner once for the env, so that its own checks of the planner values refuse a bad one
    before the training stages rather than after them."""
    env = cfg.env.make()
    try:
        cfg.planner.build(env.action_space, 1 if cfg.planner.hold_actions else cfg.world_model.frame_skip)
    finally:
        env.close()
