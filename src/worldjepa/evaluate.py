"""`worldjepa evaluate`: closed-loop planning toward goal images, with the honest baselines beside it.

A world model (a folder written by post-training) plans with CEM or MPPI in latent space inside the
receding-horizon agent; episodes start from fixed seeds that the training data never used. The same
table reports random actions (lower bound) and the same planner on the true simulator (upper bound).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from worldjepa.data.trajectories import TrajectoryDataset
from worldjepa.envs import make
from worldjepa.errors import UserError
from worldjepa.eval.closed_loop import EvalReport, Policy, RandomPolicy, evaluate, simulator_agent
from worldjepa.planning import CEM, MPPI, GoalEnergy, MPCAgent
from worldjepa.planning.sampling_planner import SamplingPlanner, per_dim_bound

BASELINES = ("random", "simulator")


def build_planner(
    cfg: dict[str, Any], action_space: gym.spaces.Box, samples: int | None = None, frame_skip: int = 1
) -> SamplingPlanner:
    """CEM or MPPI from the `planner` section, bounded by the env's action space and, if set, by
    `action_low` / `action_high` (e.g. a slower, gentler arm); with frame skip k a planned step is k
    env actions (k * A values, each bounded like one action)."""
    low, high = action_bounds(action_space, cfg["action_low"], cfg["action_high"])
    common = {
        "action_dim": action_space.shape[0] * frame_skip,
        "horizon": cfg["horizon"],
        "samples": samples or cfg["samples"],
        "iterations": cfg["iterations"],
        "low": low.repeat(frame_skip),
        "high": high.repeat(frame_skip),
        "seed": cfg["seed"],
        "action_cost": cfg["action_cost"],
    }
    if cfg["kind"] == "cem":
        top_k = min(cfg["top_k"], common["samples"])
        return CEM(
            **common, top_k=top_k, momentum=cfg["momentum"], init_std=cfg["init_std"], min_std=cfg["min_std"]
        )
    if cfg["kind"] == "mppi":
        return MPPI(**common, temperature=cfg["temperature"], noise_std=cfg["init_std"])
    raise UserError(f"planner.kind must be cem or mppi, got {cfg['kind']!r}")


def action_bounds(
    action_space: gym.spaces.Box, low: float | list[float] | None, high: float | list[float] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The env's action bounds [A] intersected with the planner's `low` and `high` (None: the env's;
    a number or one per dimension)."""
    env_low, env_high = torch.as_tensor(action_space.low), torch.as_tensor(action_space.high)
    dim = env_low.numel()
    low = torch.maximum(env_low, per_dim_bound(low, dim, -math.inf, "planner.action_low"))
    high = torch.minimum(env_high, per_dim_bound(high, dim, math.inf, "planner.action_high"))
    if bool((low > high).any()):
        raise UserError(
            f"planner.action_low / action_high leave no action inside the env's bounds: low "
            f"{low.tolist()}, high {high.tolist()}"
        )
    return low, high


def build_energy(cfg: dict[str, Any]) -> GoalEnergy:
    return GoalEnergy(metric=cfg["metric"], steps=cfg["steps"], proprio_weight=cfg["proprio_weight"])


def env_factory(env_cfg: dict[str, Any]) -> Callable[[], gym.Env]:
    """A function that builds the configured env (a fresh one per call)."""

    def make_env() -> gym.Env:
        options = {"variation": env_cfg["variation"]} if env_cfg["variation"] is not None else {}
        return make(env_cfg["id"], image_size=env_cfg["image_size"], **options)

    return make_env


def world_model_agent(
    world_model: Any, planner_cfg: dict[str, Any], action_space: gym.spaces.Box
) -> MPCAgent:
    """The receding-horizon agent that plans with `world_model` as the preset's `planner` section says.
    A model trained with frame skip k (its steps take k env actions) plans k-action steps, or one action
    per step held k times with `planner.hold_actions`."""
    env_dim = action_space.shape[0]
    frame_skip, rest = divmod(world_model.action_dim, env_dim)
    if rest or not frame_skip:
        raise UserError(
            f"the world model takes {world_model.action_dim} action values per step; the env's actions have "
            f"{env_dim}: it was trained on another env"
        )
    hold = planner_cfg["hold_actions"]
    return MPCAgent(
        world_model,
        build_planner(planner_cfg, action_space, frame_skip=1 if hold else frame_skip),
        build_energy(planner_cfg["energy"]),
        planner_cfg["execute_steps"],
        device=world_model.device,
        frame_skip=frame_skip,
        hold_actions=hold,
    )


def baseline_policy(
    name: str,
    planner_cfg: dict[str, Any],
    eval_cfg: dict[str, Any],
    make_env: Callable[[], gym.Env],
    action_space: gym.spaces.Box,
) -> Policy | Callable[[gym.Env], Policy]:
    """A baseline row's policy: `random` actions (lower bound) or the same planner on the true
    `simulator` (upper bound; `evaluate.simulator_samples` candidates, since each one steps the env)."""
    if name == "random":
        return RandomPolicy(action_space, seed=eval_cfg["seed"])
    if name == "simulator":
        planner = build_planner(planner_cfg, action_space, samples=eval_cfg["simulator_samples"])
        execute = planner_cfg["execute_steps"]
        return lambda env: simulator_agent(env, make_env(), planner, execute_steps=execute)
    raise UserError(f"unknown baseline {name!r}; use {', '.join(BASELINES)}")


@dataclass
class EvalRow:
    name: str
    report: EvalReport


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


def run_evaluate(
    world_model: Any,
    env_cfg: dict[str, Any],
    planner_cfg: dict[str, Any],
    eval_cfg: dict[str, Any],
    out_dir: str | Path,
    trajectories: str | Path | None = None,
) -> list[EvalRow]:
    """Evaluate the world model's planning agent (and the configured baselines); GIFs under out_dir."""
    check_unseen_seeds(trajectories, eval_cfg["seed"], eval_cfg["episodes"])
    out_dir = Path(out_dir)
    make_env = env_factory(env_cfg)
    probe = make_env()
    action_space = probe.action_space
    probe.close()
    common = {
        "episodes": eval_cfg["episodes"],
        "seed": eval_cfg["seed"],
        "gif_episodes": eval_cfg["gif_episodes"],
        "subgoal_steps": eval_cfg["subgoal_steps"],
    }
    agent = world_model_agent(world_model, planner_cfg, action_space)
    rows = [EvalRow("world model", evaluate(make_env, agent, gif_dir=out_dir / "world_model", **common))]
    for name in eval_cfg["baselines"]:
        policy = baseline_policy(name, planner_cfg, eval_cfg, make_env, action_space)
        rows.append(EvalRow(name, evaluate(make_env, policy, gif_dir=out_dir / name, **common)))
    for row in rows:
        folder = out_dir / row.name.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(dataclasses.asdict(row.report), indent=1))
    return rows


def format_table(rows: list[EvalRow]) -> str:
    lines = [f"{'policy':14s} {'success':>8s} {'95% CI':>15s} {'final dist':>11s} {'s / re-plan':>12s}"]
    for row in rows:
        r = row.report
        low, high = r.success_ci95
        plan = f"{r.plan_time_mean:.3f}" if r.plan_time_mean is not None else "-"
        lines.append(
            f"{row.name:14s} {r.success_rate:8.1%} {f'{low:.0%}-{high:.0%}':>15s} "
            f"{r.mean_final_distance:11.4f} {plan:>12s}"
        )
    return "\n".join(lines)
