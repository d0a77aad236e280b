"""`worldjepa evaluate`: closed-loop planning toward goal images, with the honest baselines beside it.

A world model (a folder written by post-training) plans with CEM or MPPI in latent space inside the
receding-horizon agent; episodes start from fixed seeds that the training data never used. The same
table reports random actions (lower bound) and the same planner on the true simulator (upper bound).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from worldjepa.data.trajectories import TrajectoryDataset
from worldjepa.envs import make
from worldjepa.errors import UserError
from worldjepa.eval.closed_loop import EvalReport, RandomPolicy, evaluate, simulator_agent
from worldjepa.planning import CEM, MPPI, GoalEnergy, MPCAgent
from worldjepa.planning.sampling_planner import SamplingPlanner

BASELINES = ("random", "simulator")


def build_planner(
    cfg: dict[str, Any], action_space: gym.spaces.Box, samples: int | None = None
) -> SamplingPlanner:
    """CEM or MPPI from the `planner` section, bounded by the env's action space."""
    common = {
        "action_dim": action_space.shape[0],
        "horizon": cfg["horizon"],
        "samples": samples or cfg["samples"],
        "iterations": cfg["iterations"],
        "low": torch.as_tensor(action_space.low),
        "high": torch.as_tensor(action_space.high),
        "seed": cfg["seed"],
    }
    if cfg["kind"] == "cem":
        top_k = min(cfg["top_k"], common["samples"])
        return CEM(
            **common, top_k=top_k, momentum=cfg["momentum"], init_std=cfg["init_std"], min_std=cfg["min_std"]
        )
    if cfg["kind"] == "mppi":
        return MPPI(**common, temperature=cfg["temperature"], noise_std=cfg["init_std"])
    raise UserError(f"planner.kind must be cem or mppi, got {cfg['kind']!r}")


def build_energy(cfg: dict[str, Any]) -> GoalEnergy:
    return GoalEnergy(metric=cfg["metric"], steps=cfg["steps"], proprio_weight=cfg["proprio_weight"])


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

    def env_factory() -> gym.Env:
        options = {"variation": env_cfg["variation"]} if env_cfg["variation"] is not None else {}
        return make(env_cfg["id"], image_size=env_cfg["image_size"], **options)

    probe = env_factory()
    action_space = probe.action_space
    probe.close()
    common = {
        "episodes": eval_cfg["episodes"],
        "seed": eval_cfg["seed"],
        "gif_episodes": eval_cfg["gif_episodes"],
    }
    rows = []
    agent = MPCAgent(
        world_model,
        build_planner(planner_cfg, action_space),
        build_energy(planner_cfg["energy"]),
        planner_cfg["execute_steps"],
        device=world_model.device,
    )
    rows.append(
        EvalRow("world model", evaluate(env_factory, agent, gif_dir=out_dir / "world_model", **common))
    )
    for name in eval_cfg["baselines"]:
        if name == "random":
            policy = RandomPolicy(action_space, seed=eval_cfg["seed"])
        elif name == "simulator":
            planner = build_planner(planner_cfg, action_space, samples=eval_cfg["simulator_samples"])

            def policy(env: gym.Env, planner: SamplingPlanner = planner) -> MPCAgent:
                return simulator_agent(
                    env, env_factory(), planner, execute_steps=planner_cfg["execute_steps"]
                )
        else:
            raise UserError(f"unknown baseline {name!r}; use {', '.join(BASELINES)}")
        rows.append(EvalRow(name, evaluate(env_factory, policy, gif_dir=out_dir / name, **common)))
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
