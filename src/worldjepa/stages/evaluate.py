"""Stage 3, `worldjepa evaluate`: closed-loop planning toward goal images, with the honest baselines beside it.

A world model (a folder written by post-training) plans with CEM or MPPI in latent space inside the
receding-horizon agent, under the planning protocol (`worldjepa.planning.goal`): the current image, the
robot's own state and goal images, nothing else about the goal. Episodes start from the validation
seeds (to tune) or the test seeds (for reported tables), both checked against the seeds of the
training data. Each row is one policy over the same episodes: the world model's agent; random actions
(the floor); and two privileged references, labelled so: the world model given the simulator's goal
state, and the same planner on the true simulator. A row writes `<out>/<row>/report.json` (protocol,
summary, failed seeds, every episode), its GIFs and `episodes.png`; `benchmarks/planning_table.py` runs
rows through this same code.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from worldjepa.data.trajectories import TrajectoryDataset
from worldjepa.envs.registry import same_scene
from worldjepa.errors import UserError
from worldjepa.eval.closed_loop import (
    EpisodeRecord,
    Policy,
    RandomPolicy,
    evaluate,
    simulator_agent,
    summarise,
)
from worldjepa.planning.ac_world_model import ACWorldModel
from worldjepa.planning.agent import build_agent
from worldjepa.planning.energy import GoalEnergy
from worldjepa.presets import SPLIT_SEEDS, SPLIT_SIZE, WorldModelPreset
from worldjepa.viz.episodes import plot_episodes

WORLD_MODEL = "world_model"
#: Rows other than the world model's own: the floor, references that see the simulator's goal state, and
#: `true_dynamics`: the world model's encoder and image energy planned through the true simulator (the goal
#: an image, the dynamics privileged): what the stage-1 latent plans like when prediction is perfect.
BASELINES = ("random", "privileged_goal_state", "simulator", "true_dynamics")
PRIVILEGED = ("privileged_goal_state", "simulator")
PROTOCOLS = {
    "privileged_goal_state": "privileged goal state",
    "simulator": "privileged goal state",
    "true_dynamics": "privileged dynamics",
}
REPORT = "report.json"


def check_unseen_seeds(training_seeds: Iterable[int], source: str) -> None:
    """Neither the validation nor the test range may hold a reset seed of the training data."""
    used = set(training_seeds)
    for split, first in SPLIT_SEEDS.items():
        clash = used & set(range(first, first + SPLIT_SIZE))
        if clash:
            raise UserError(
                f"the {split} seeds {sorted(clash)[:5]} were used to collect the training data ({source}); "
                "collect it with another seed"
            )


def check_world_model(
    world_model: ACWorldModel, cfg: WorldModelPreset, trajectories: str | Path | None
) -> None:
    """The model must be for the configured env, and no evaluation seed may be one it was trained on
    (its recorded training seeds, and those of `trajectories` when given)."""
    trained = world_model.trained_on
    if not same_scene(trained.get("env_id", cfg.env.id), cfg.env.id):
        raise UserError(
            f"the world model was trained on {trained['env_id']}, the preset evaluates {cfg.env.id} (another "
            "scene); use a preset of its scene (-c)"
        )
    if trajectories is not None:
        check_unseen_seeds(TrajectoryDataset(trajectories, clip_length=1).episode_seeds, str(trajectories))
    elif "seeds" in trained:
        check_unseen_seeds(trained["seeds"], "recorded in the model folder")
    else:
        raise UserError(
            "this world model does not record the seeds of its training data (made by an older worldjepa): "
            "pass its training trajectories (--data DIR) or re-run posttrain"
        )


def load_world_model(
    model: ACWorldModel | str | Path, cfg: WorldModelPreset, trajectories: str | Path | None = None
) -> ACWorldModel:
    """A world model object as is, or loaded from its folder on the preset's device and precision; checked
    against the preset's env and the evaluation seeds (`check_world_model`)."""
    if not isinstance(model, ACWorldModel):
        model = ACWorldModel.load(model, device=cfg.device, precision=cfg.world_model.precision)
    check_world_model(model, cfg, trajectories)
    return model


def row_policy(
    row: str,
    cfg: WorldModelPreset,
    model: ACWorldModel | str | Path | None,
    action_space: gym.spaces.Box,
    trajectories: str | Path | None = None,
) -> Policy | Callable[[gym.Env], Policy]:
    """The policy of a row: the world model's agent (also the `privileged_goal_state` row: the same agent,
    handed the simulator's goal state), `random` actions, the same planner on the true `simulator`
    (`evaluate.simulator_samples` candidates, since each one steps the env), or `true_dynamics`: that
    planner on the true simulator scoring the world model's embeddings of the rendered frames against the
    goal image's with the preset's energy metric (images only: no proprio term, no control cost)."""
    if row in (WORLD_MODEL, "privileged_goal_state"):
        if model is None:
            raise UserError(f"the {row} row needs a world model")
        world_model = load_world_model(model, cfg, trajectories)
        needs_state = cfg.planner.energy.proprio_weight > 0 and world_model.use_proprio
        if needs_state and row == WORLD_MODEL and world_model.state_readout is None:
            raise UserError(
                "planner.energy.proprio_weight > 0 needs a goal state, which this world model cannot read from "
                "a goal image (it has no state readout): re-run posttrain, or set planner.energy.proprio_weight=0"
            )
        return build_agent(world_model, cfg.planner, action_space)
    if row == "random":
        return RandomPolicy(action_space, seed=cfg.evaluate.seed)
    if row in ("simulator", "true_dynamics"):
        execute, schedule = cfg.planner.execute_steps, cfg.planner.subgoal_steps
        if row == "simulator":
            planner = cfg.planner.build(action_space, samples=cfg.evaluate.simulator_samples)
            return lambda env: simulator_agent(env, cfg.env.make(), planner, None, execute, schedule)
        if model is None:
            raise UserError("the true_dynamics row needs a world model (its encoder)")
        embed = load_world_model(model, cfg, trajectories).embed
        image_only = dataclasses.replace(
            cfg.planner, action_cost=0.0
        )  # V-JEPA 2-AC's energy: no control cost
        planner = image_only.build(action_space, samples=cfg.evaluate.simulator_samples)
        energy = GoalEnergy(metric=cfg.planner.energy.metric, steps=cfg.planner.energy.steps)
        return lambda env: simulator_agent(env, cfg.env.make(), planner, energy, execute, schedule, embed)
    raise UserError(f"unknown evaluation row {row!r}; use {WORLD_MODEL}, {', '.join(BASELINES)}")


def _episodes(
    row: str,
    cfg: WorldModelPreset,
    model: ACWorldModel | str | Path | None,
    first: int,
    count: int,
    gif_dir: Path | None,
    threads: int | None = None,
    trajectories: str | Path | None = None,
) -> list[EpisodeRecord]:
    """Episodes first..first+count-1 of a row (seeds `evaluate.seed + first`...) on `threads` torch
    threads (None: as set); GIFs of the first `evaluate.gif_episodes` when `gif_dir` is given."""
    if threads is not None:
        torch.set_num_threads(threads)
    probe = cfg.env.make()
    action_space = probe.action_space
    probe.close()
    report = evaluate(
        cfg.env.make,
        row_policy(row, cfg, model, action_space, trajectories),
        episodes=count,
        seed=cfg.evaluate.seed + first,
        gif_dir=gif_dir,
        gif_episodes=cfg.evaluate.gif_episodes,
        progress=first == 0,
        subgoal_steps=cfg.planner.subgoal_steps,
        privileged=row in PRIVILEGED,
    )
    return report.episodes


def exit_with_parent() -> None:
    """A worker process's initializer: end the worker when its parent process ends. A pool's workers
    otherwise outlive a parent that was killed (`kill`, `timeout`, a scheduler's time limit; Ctrl-C reaches
    them all), each planning its remaining episodes for minutes on cores nobody is using."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def run_row(
    row: str,
    cfg: WorldModelPreset,
    out_dir: str | Path,
    model: ACWorldModel | str | Path | None = None,
    workers: int = 1,
    name: str | None = None,
    trajectories: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate one row over `evaluate.episodes` episodes, split over `workers` processes of consecutive
    seeds (each loads the model from its folder), merged in seed order. Writes <out_dir>/<name>/ (GIFs,
    episodes.png, report.json) and returns the report's contents. `trajectories`: the model's training
    data, for a model folder that does not record its training seeds."""
    if cfg.evaluate.episodes > SPLIT_SIZE:
        raise UserError(f"evaluate.episodes must be at most {SPLIT_SIZE} (the size of a seed range)")
    name = name or row
    folder = Path(out_dir) / name
    tic = time.perf_counter()
    episodes = cfg.evaluate.episodes
    sizes = [len(part) for part in np.array_split(np.arange(episodes), max(1, workers)) if len(part)]
    if len(sizes) == 1:
        records = _episodes(row, cfg, model, 0, episodes, folder, None, trajectories)
        threads = torch.get_num_threads()
    else:
        if isinstance(model, ACWorldModel):
            raise UserError("evaluating with several workers needs the world model's folder, not the object")
        threads = max(1, (os.cpu_count() or 1) // len(sizes))
        firsts = [0, *itertools.accumulate(sizes[:-1])]
        gif_dirs = [folder] + [None] * (len(sizes) - 1)
        n = len(sizes)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(n, mp_context=spawn, initializer=exit_with_parent) as pool:
            shards = pool.map(
                _episodes, [row] * n, [cfg] * n, [model] * n, firsts, sizes, gif_dirs, [threads] * n
            )
            records = [record for shard in shards for record in shard]
        plot_episodes(  # over every shard's episodes (shard 0's own plot holds only its own)
            [r.distances for r in records], [r.successes for r in records], folder / "episodes.png"
        )
    report = summarise(records)
    result = {
        "row": name,
        "protocol": PROTOCOLS.get(row, "goal images"),
        "split": cfg.evaluate.split,
        "variation": cfg.env.variation,
        **report.summary_dict(),
        "wall_seconds": time.perf_counter() - tic,
        "workers": len(sizes),
        "threads": threads,
        "episodes": [dataclasses.asdict(r) for r in records],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REPORT).write_text(json.dumps(result, indent=1))
    return result


def run_evaluate(
    world_model: ACWorldModel | str | Path,
    cfg: WorldModelPreset,
    out_dir: str | Path,
    trajectories: str | Path | None = None,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """The world model's row and the preset's baselines (`evaluate.baselines`); GIFs under out_dir.
    `trajectories`: the model's training data (checked against the evaluation seeds)."""
    rows = [WORLD_MODEL, *cfg.evaluate.baselines]
    return [run_row(row, cfg, out_dir, world_model, workers, trajectories=trajectories) for row in rows]


def format_table(reports: list[dict[str, Any]]) -> str:
    """The rows' reports as a text table: success at the end with its 95 % interval, success at any step
    ("reached"), final distance, re-plan time."""
    lines = [
        f"{'policy':22s} {'protocol':22s} {'success':>8s} {'95% CI':>10s} {'reached':>8s} {'final dist':>11s} "
        f"{'s / re-plan':>12s}"
    ]
    for r in reports:
        low, high = r["success_ci95"]
        plan = f"{r['plan_time_mean']:.3f}" if r["plan_time_mean"] is not None else "-"
        name = r["row"].replace("_", " ")
        lines.append(
            f"{name:22s} {r['protocol']:22s} {r['success_rate']:8.1%} {f'{low:.0%}-{high:.0%}':>10s} "
            f"{r['reached_rate']:8.1%} "
            f"{r['mean_final_distance']:11.4f} {plan:>12s}"
        )
    split = {r["split"] for r in reports}
    return "\n".join(lines) + f"\n({' and '.join(sorted(split))} seeds)"
