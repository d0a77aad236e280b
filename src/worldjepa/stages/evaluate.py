"""Stage 3, `worldjepa evaluate`: closed-loop planning toward goal images, with the honest baselines beside it.

A world model (a folder written by post-training) plans with CEM or MPPI in latent space inside the
receding-horizon agent; episodes start from fixed seeds that the training data never used. Each row is
one policy over the same episodes: the world model's agent, random actions (lower bound) and the same
planner on the true simulator (upper bound). A row writes `<out>/<row>/report.json` (the summary, failed
seeds and every episode), its GIFs and `episodes.png`; `benchmarks/planning_table.py` runs rows through
this same code.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from worldjepa.data.trajectories import TrajectoryDataset
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
from worldjepa.presets import WorldModelPreset
from worldjepa.viz.episodes import plot_episodes

WORLD_MODEL = "world_model"
BASELINES = ("random", "simulator")
REPORT = "report.json"


def check_unseen_seeds(trajectories: str | Path | None, seed: int, episodes: int) -> None:
    """Evaluation episodes must not start from a reset seed that the training data used."""
    if trajectories is None or not Path(trajectories).is_dir():
        return
    used = set(TrajectoryDataset(trajectories, clip_length=1).episode_seeds)
    clash = used & set(range(seed, seed + episodes))
    if clash:
        raise UserError(
            f"evaluation seeds {sorted(clash)[:5]} were used to collect {trajectories}; pick evaluate.seed"
        )


def load_world_model(model: ACWorldModel | str | Path, cfg: WorldModelPreset) -> ACWorldModel:
    """A world model object as is, or loaded from its folder on the preset's device and precision."""
    if isinstance(model, ACWorldModel):
        return model
    return ACWorldModel.load(model, device=cfg.device, precision=cfg.world_model.precision)


def row_policy(
    row: str, cfg: WorldModelPreset, model: ACWorldModel | str | Path | None, action_space: gym.spaces.Box
) -> Policy | Callable[[gym.Env], Policy]:
    """The policy of a row: the world model's agent, `random` actions (lower bound) or the same planner
    on the true `simulator` (upper bound; `evaluate.simulator_samples` candidates, since each one steps
    the env)."""
    if row == WORLD_MODEL:
        if model is None:
            raise UserError("the world_model row needs a world model")
        return build_agent(load_world_model(model, cfg), cfg.planner, action_space)
    if row == "random":
        return RandomPolicy(action_space, seed=cfg.evaluate.seed)
    if row == "simulator":
        planner = cfg.planner.build(action_space, samples=cfg.evaluate.simulator_samples)
        execute = cfg.planner.execute_steps
        return lambda env: simulator_agent(env, cfg.env.make(), planner, execute_steps=execute)
    raise UserError(f"unknown evaluation row {row!r}; use {WORLD_MODEL}, {', '.join(BASELINES)}")


def _episodes(
    row: str,
    cfg: WorldModelPreset,
    model: ACWorldModel | str | Path | None,
    first: int,
    count: int,
    gif_dir: Path | None,
    threads: int | None = None,
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
        row_policy(row, cfg, model, action_space),
        episodes=count,
        seed=cfg.evaluate.seed + first,
        gif_dir=gif_dir,
        gif_episodes=cfg.evaluate.gif_episodes,
        progress=first == 0,
        subgoal_steps=cfg.evaluate.subgoal_steps,
    )
    return report.episodes


def run_row(
    row: str,
    cfg: WorldModelPreset,
    out_dir: str | Path,
    model: ACWorldModel | str | Path | None = None,
    workers: int = 1,
    name: str | None = None,
) -> dict[str, Any]:
    """Evaluate one row over `evaluate.episodes` episodes, split over `workers` processes of consecutive
    seeds (each loads the model from its folder), merged in seed order. Writes <out_dir>/<name>/ (GIFs,
    episodes.png, report.json) and returns the report's contents."""
    name = name or row
    folder = Path(out_dir) / name
    tic = time.perf_counter()
    episodes = cfg.evaluate.episodes
    sizes = [len(part) for part in np.array_split(np.arange(episodes), max(1, workers)) if len(part)]
    if len(sizes) == 1:
        records, threads = _episodes(row, cfg, model, 0, episodes, folder), torch.get_num_threads()
    else:
        if isinstance(model, ACWorldModel):
            raise UserError("evaluating with several workers needs the world model's folder, not the object")
        threads = max(1, (os.cpu_count() or 1) // len(sizes))
        firsts = [0, *itertools.accumulate(sizes[:-1])]
        gif_dirs = [folder] + [None] * (len(sizes) - 1)
        n = len(sizes)
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
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
    """The world model's row and the preset's baselines (`evaluate.baselines`); GIFs under out_dir."""
    check_unseen_seeds(trajectories, cfg.evaluate.seed, cfg.evaluate.episodes)
    rows = [WORLD_MODEL, *cfg.evaluate.baselines]
    return [run_row(row, cfg, out_dir, world_model, workers) for row in rows]


def format_table(reports: list[dict[str, Any]]) -> str:
    """The rows' reports as a text table: success with its 95 % interval, final distance, re-plan time."""
    lines = [f"{'policy':14s} {'success':>8s} {'95% CI':>15s} {'final dist':>11s} {'s / re-plan':>12s}"]
    for r in reports:
        low, high = r["success_ci95"]
        plan = f"{r['plan_time_mean']:.3f}" if r["plan_time_mean"] is not None else "-"
        name = r["row"].replace("_", " ")
        lines.append(
            f"{name:14s} {r['success_rate']:8.1%} {f'{low:.0%}-{high:.0%}':>15s} "
            f"{r['mean_final_distance']:11.4f} {plan:>12s}"
        )
    return "\n".join(lines)
