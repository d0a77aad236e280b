"""`worldjepa demo`: perception -> world model -> planning -> action, in a closed loop, on one CPU.

With a world-model preset (default `wm_arm_reach`) it runs every stage into one run folder, skipping
stages whose output is already there (so a killed demo picks up where it stopped):

    data/        trajectories recorded by random and noisy scripted policies   (`worldjepa collect`)
    encoder/     stage 1: action-free V-JEPA 2-style pretraining on that video  (`worldjepa pretrain`)
    world_model/ stage 2: the action-conditioned predictor over the frozen encoder (`worldjepa posttrain`)
    eval/        closed-loop planning toward goal images: GIFs, plot, success table (`worldjepa evaluate`)

`--model DIR` skips training and plans with a saved world model (e.g. the one shipped in
`checkpoints/`, produced by this same command).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from worldjepa.config import apply_overrides, load_preset
from worldjepa.data.collect import collect, write_episode_preview
from worldjepa.evaluate import format_table, run_evaluate
from worldjepa.posttrain import WORLD_MODEL_DIR, run_posttrain
from worldjepa.pretrain import run_pretrain

#: World models shipped with the repository, by the preset that made them with `worldjepa demo --train`
#: (see checkpoints/README.md); a preset without one trains every stage.
SHIPPED_MODELS = {"wm_arm_reach": Path(__file__).resolve().parents[2] / "checkpoints" / "arm_reach"}


def stage1_config(cfg: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """The encoder preset with the world-model preset's overrides, reading video from `data_dir`."""
    encoder = cfg["encoder"]
    overrides = ["data.dataset=trajectories", f"data.root={data_dir}", *encoder["overrides"]]
    return apply_overrides(load_preset(encoder["preset"]), overrides)


def run_demo(cfg: dict[str, Any], run_dir: str | Path, model_dir: str | Path | None = None) -> str:
    """Run (or resume) every stage of `cfg` in `run_dir`; returns the evaluation table."""
    from worldjepa.world_model import ACWorldModel

    run_dir = Path(run_dir)
    data_dir = run_dir / "data"
    timings: dict[str, float] = {}
    wm = cfg["world_model"]
    if model_dir is not None:
        world_model = ACWorldModel.load(model_dir, device=wm["train"]["device"], precision=wm["precision"])
        data_dir = None
    else:
        if not (data_dir / "meta.json").is_file():
            tic = time.perf_counter()
            c, env = cfg["collect"], cfg["env"]
            print(f"[1/4] collecting {c['episodes']} episodes of {env['id']}")
            collect(
                env["id"],
                c["episodes"],
                data_dir,
                policy=c["policy"],
                expert_fraction=c["expert_fraction"],
                workers=c["workers"],
                seed=c["seed"],
                variation=env["variation"],
                image_size=env["image_size"],
                noise=c["noise"],
            )
            write_episode_preview(data_dir, data_dir / "preview.gif")
            timings["collect"] = time.perf_counter() - tic
        encoder_dir = run_dir / "encoder"
        tic = time.perf_counter()
        print("[2/4] stage 1: action-free encoder pretraining (V-JEPA 2 style) on the recorded video")
        stage1 = stage1_config(cfg, data_dir)
        stage1["train"]["resume"] = True  # a finished run returns at once; a killed one continues
        run_pretrain(stage1, encoder_dir)
        timings["stage 1"] = time.perf_counter() - tic
        if not (run_dir / WORLD_MODEL_DIR / "config.json").is_file():
            tic = time.perf_counter()
            print("[3/4] stage 2: action-conditioned post-training on cached frame latents")
            wm_cfg = {**cfg["world_model"], "train": {**cfg["world_model"]["train"], "resume": True}}
            run_posttrain(wm_cfg, encoder_dir, data_dir, run_dir)
            timings["stage 2"] = time.perf_counter() - tic
        world_model = ACWorldModel.load(
            run_dir / WORLD_MODEL_DIR, device=wm["train"]["device"], precision=wm["precision"]
        )
    print(f"[4/4] planning toward goal images: {cfg['evaluate']['episodes']} episodes of {cfg['env']['id']}")
    tic = time.perf_counter()
    rows = run_evaluate(world_model, cfg["env"], cfg["planner"], cfg["evaluate"], run_dir / "eval", data_dir)
    timings["evaluate"] = time.perf_counter() - tic
    table = format_table(rows)
    spent = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
    return f"{table}\n\nwall time: {spent}\nepisode GIFs: {run_dir / 'eval' / 'world_model'}"
