"""Which state-readout fit reads goal images of scenes it never saw? Fit one readout per setting on a
world model's training frames, then measure the grasp point each reads from the goal images of every
arm scene variation (the planner's goal state under the protocol; 3 cm is Reach's success radius).

    python benchmarks/readout_scenes.py --model checkpoints/arm_reach --data runs/exp15/reach_big \
        --fit "" --fit scene_augment=0.5,steps=8000 [--split validation] [--episodes 50] [--threads 2]
    python benchmarks/readout_scenes.py --model runs/rl28mix/world_model --near  # its own readout, no fit

Each `--fit` is a comma-separated list of `world_model.state_readout` settings over the preset's (an
empty one: the preset's own); without `--fit` the model's own saved readout is measured. `--near` adds a
row per readout: the error of the reads made along the scripted expert's approach from 2-8 cm away, where
the planner must tell "there" from "almost there" (a pair readout's reads improve as the arm nears the
goal, so the first frame's error alone does not say how far off the arm will stop). The readouts take the
model's own input normalisation; the seeds of the split are checked against the model's training seeds
first, as every evaluation does. Prints one row per fit: its wall time, the held-out frames' error and
the mean grasp-point error (cm) on each scene's goal images; `--json PATH` also writes them.
`--light-factors` adds two scenes that split the `lighting` scene in its parts: its dimmer light alone
(the default light's direction) and its light's direction alone (the default strength).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from goal_readout import grasp_error_cm
from worldjepa.envs.variations import PRESETS, Variation
from worldjepa.methods.state_readout_fit import fit_state_readout, recorded_frames
from worldjepa.planning.ac_world_model import ACWorldModel
from worldjepa.presets import SPLIT_SEEDS, WorldModelPreset, load_config
from worldjepa.stages.evaluate import check_world_model

#: The errors (cm) of the goal reads of one episode: (env, its reset seed) -> errors.
EpisodeErrors = Callable[[gym.Env, int], list[float]]


def light_factors() -> dict[str, Variation]:
    """The `lighting` scene's parts, each alone over the default scene: its dimness, its direction."""
    dark, default = PRESETS["lighting"], PRESETS["default"]
    return {
        "lighting: dimness only": dataclasses.replace(
            default, name="dim", light_diffuse=dark.light_diffuse, ambient=dark.ambient
        ),
        "lighting: direction only": dataclasses.replace(
            default, name="turned", light_direction=dark.light_direction
        ),
    }


def mean_per_scene(
    cfg: WorldModelPreset, scenes: dict[str, Variation], seeds: range, episode_errors: EpisodeErrors
) -> dict[str, float]:
    """The mean of `episode_errors(env, seed)` over the episodes of `seeds`, in every scene."""
    errors = {}
    for name, scene in scenes.items():
        env = dataclasses.replace(cfg.env, variation=scene).make()
        values = [value for seed in seeds for value in episode_errors(env, seed)]
        env.close()
        errors[name] = float(np.mean(values)) if values else float("nan")
    return errors


def first_frame_errors(world_model: ACWorldModel) -> EpisodeErrors:
    """The grasp-point error (cm) of the goal read from the episode's first frame (a pair readout's
    farthest read; a single-frame readout reads the goal image alone)."""

    def errors(env: gym.Env, seed: int) -> list[float]:
        start, _ = env.reset(seed=seed)
        return [grasp_error_cm(world_model, env.unwrapped.goal_observation(), start)]

    return errors


def near_goal_errors(world_model: ACWorldModel, near: tuple[float, float] = (2.0, 8.0)) -> EpisodeErrors:
    """The grasp-point errors (cm) of the goal reads made from the frames of the noiseless scripted
    expert's approach that are `near` (cm, true distance) from the goal."""

    def errors(env: gym.Env, seed: int) -> list[float]:
        observation, _ = env.reset(seed=seed)
        goal, rng, done, found = env.unwrapped.goal_observation(), np.random.default_rng(seed), False, []
        while not done:
            away = 100 * np.linalg.norm(observation["state"][:3] - goal["state"][:3])
            if near[0] <= away < near[1]:
                found.append(grasp_error_cm(world_model, goal, observation))
            observation, _, terminated, truncated, _ = env.step(env.unwrapped.expert_action(rng, 0.0))
            done = terminated or truncated
        return found

    return errors


def print_row(name: str, seconds: str, held_out: str, scenes: dict[str, float]) -> None:
    print(
        f"| {name} | {seconds} | {held_out} | {' | '.join(f'{e:.2f}' for e in scenes.values())} |", flush=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", "-c", default="wm_arm_reach")
    parser.add_argument(
        "--model", required=True, help="a world model folder: its input normalisation and seeds"
    )
    parser.add_argument("--data", help="the trajectory folder to fit on (the model's own); needed by --fit")
    parser.add_argument("--fit", action="append", default=[], help="state_readout settings, a=1,b=2")
    parser.add_argument("--split", choices=list(SPLIT_SEEDS), default="validation")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--near", action="store_true", help="also the reads from 2-8 cm away (see above)")
    parser.add_argument("--light-factors", action="store_true", help="also the lighting scene's parts alone")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, [], WorldModelPreset)
    world_model = ACWorldModel.load(args.model)
    if args.fit and not args.data:
        parser.error("--fit needs --data, the trajectory folder to fit on")
    check_world_model(world_model, cfg, args.data)
    seeds = range(SPLIT_SEEDS[args.split], SPLIT_SEEDS[args.split] + args.episodes)
    rows = []
    scenes = {**PRESETS, **(light_factors() if args.light_factors else {})}
    print(f"| readout fit | fit wall time | held-out grasp point (cm, per axis) | {' | '.join(scenes)} |")
    print(f"|---|---:|---|{'---:|' * len(scenes)}")

    def measure(name: str, seconds: str, held_out: str) -> dict[str, dict[str, float]]:
        row = {"scenes_cm": mean_per_scene(cfg, scenes, seeds, first_frame_errors(world_model))}
        print_row(name, seconds, held_out, row["scenes_cm"])
        if args.near:
            row["near_goal_cm"] = mean_per_scene(cfg, scenes, seeds, near_goal_errors(world_model))
            print_row(f"{name}, from 2-8 cm away", seconds, held_out, row["near_goal_cm"])
        return row

    if not args.fit:
        rows.append({"fit": None, **measure("the model's own", "—", "—")})
    else:
        frames, states, episodes = recorded_frames(args.data)
        to_input = world_model.frames.pixels_to_input
    for settings in args.fit:
        overrides = [f"world_model.state_readout.{s}" for s in settings.split(",") if s]
        fit_cfg = load_config(args.config, overrides, WorldModelPreset).world_model.state_readout
        readout = fit_cfg.build(states.shape[1], world_model.frames.image_size[0])
        tic = time.perf_counter()
        held_out = fit_state_readout(readout, frames, states, episodes, to_input, fit_cfg, "cpu", False)
        seconds = time.perf_counter() - tic
        world_model.state_readout = readout
        axes = ", ".join(f"{100 * e:.2f}" for e in held_out.get("val_mean_abs_error", [])[:3])
        row = measure(settings or "preset", f"{seconds:.0f} s", axes)
        rows.append({"fit": settings, "seconds": seconds, "held_out": held_out, **row})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "split": args.split, "episodes": args.episodes, "rows": rows}, f)


if __name__ == "__main__":
    main()
