"""Closed-loop evaluation: run a policy in an env for N seeded episodes and report success honestly.

Episode i starts from `env.reset(seed=seed + i)` (start and goal come from the env), so two runs with
the same seeds see the same episodes. The success rate comes with a 95 % Wilson score interval
(meaningful even at 0 or N successes, unlike the normal approximation). An episode succeeds if
`info["success"]` holds after its last step.

Baselines share the `Policy` API, so they go through the very same loop:
- `RandomPolicy`: uniform random actions, the floor;
- `simulator_agent`: the same planner with the true simulator as the world model, planning toward the
  simulator's goal state: a privileged reference (what planning can do when prediction is perfect and
  the goal state is known), never a headline; or, given a world model's encoder, toward the goal image's
  embedding: the encoder's image energy with perfect prediction (privileged dynamics, a reference that
  tells a stage-1 encoder's energy landscape apart from stage 2's prediction error).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from worldjepa.errors import UserError
from worldjepa.planning.agent import MPCAgent
from worldjepa.planning.energy import GoalEnergy
from worldjepa.planning.goal import Goal, PrivilegedGoal, goals_from_observations
from worldjepa.planning.sampling_planner import SamplingPlanner
from worldjepa.planning.world_model import Latent
from worldjepa.viz.episodes import plot_episodes, save_episode_gif


class Policy(Protocol):
    """Anything `evaluate` can run. A policy restarts its randomness at `reset`, so an episode's
    outcome depends only on the env seed; `reset` also gets the episode's step count (its time limit).
    It may expose `plan_times: list[float]` (seconds per re-plan since the last reset), which the report
    summarises."""

    def reset(self, goals: Sequence[Goal], steps: int | None = None) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


class RandomPolicy:
    """Uniform random actions in the action space; the noise is seeded by `seed` and the goal, so
    episodes differ from each other but each replays identically."""

    def __init__(self, action_space: gym.spaces.Box, seed: int = 0) -> None:
        self.low, self.high, self.seed = action_space.low, action_space.high, seed
        self.rng = np.random.default_rng(seed)

    def reset(self, goals: Sequence[Goal], steps: int | None = None) -> None:
        goal_key = zlib.crc32(np.ascontiguousarray(goals[-1].image).tobytes())
        self.rng = np.random.default_rng([self.seed, goal_key])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


class SimulatorModel:
    """The true simulator as a `WorldModel` (for the upper-bound baselines).

    Without `embed` the latent is the env's `state` vector as a single token, visual [B, 1, S], and the goal
    is the simulator's goal state (a privileged reference). With `embed` (images uint8 [B, H, W, 3] ->
    frame latents [B, N, D], a world model's frozen encoder) the latent is the embedding of the rendered
    camera image and the goal is its image: the encoder's energy landscape with perfect prediction.
    `encode` also takes a snapshot of the live env (`get_sim_state`); `unroll` restores that snapshot in a
    scratch copy of the env and steps each candidate there, one at a time: C * H env steps per call, so
    keep the planner's samples small. The rendered frames are embedded in one batch, every step's only when
    `every_step` (an energy summed over the steps); otherwise the last frame's embedding stands for every
    step, as an energy that scores the last step reads that one alone (a third of the encoder's work at H 3).
    """

    def __init__(
        self,
        env: gym.Env,
        scratch_env: gym.Env,
        embed: Callable[[Tensor], Tensor] | None = None,
        every_step: bool = True,
    ) -> None:
        self.live, self.scratch = env.unwrapped, scratch_env.unwrapped
        self.embed, self.every_step = embed, every_step
        scratch_env.reset(seed=0)
        self.snapshot = None

    def latent(self, seen: Tensor) -> Tensor:
        """Observations (states [B, S], or images [B, H, W, 3] with `embed`) -> latents [B, N, D]."""
        return seen.float()[:, None, :] if self.embed is None else self.embed(seen)

    def encode(self, obs: dict[str, Tensor]) -> Latent:
        self.snapshot = self.live.get_sim_state()
        return Latent(self.latent(obs["state" if self.embed is None else "pixels"]))

    def encode_goal(self, goal: Goal) -> Latent:
        if self.embed is not None:
            return Latent(self.embed(torch.from_numpy(np.ascontiguousarray(goal.image))[None]))
        if not isinstance(goal, PrivilegedGoal):
            raise UserError("the true simulator plans toward goal states: it is a privileged reference row")
        return Latent(torch.as_tensor(goal.state, dtype=torch.float32)[None, None, :])

    def unroll(self, latent: Latent, actions: Tensor) -> Latent:
        candidates, horizon = actions.shape[:2]
        key = "state" if self.embed is None else "pixels"
        plans = actions.float().cpu().numpy()
        seen = []
        for c in range(candidates):
            self.scratch.set_sim_state(self.snapshot)
            seen.extend(self.scratch.step(plans[c, h])[0][key] for h in range(horizon))
        if not self.every_step:
            last = self.latent(torch.from_numpy(np.stack(seen[horizon - 1 :: horizon])))  # [C, N, D]
            return Latent(last[:, None].expand(-1, horizon, -1, -1).to(actions.device))
        steps = self.latent(torch.from_numpy(np.stack(seen)))  # [C * H, N, D]
        return Latent(steps.unflatten(0, (candidates, horizon)).to(actions.device))


def simulator_agent(
    env: gym.Env,
    scratch_env: gym.Env,
    planner: SamplingPlanner,
    energy: GoalEnergy | None = None,
    execute_steps: int = 1,
    subgoal_steps: Sequence[int] = (),
    embed: Callable[[Tensor], Tensor] | None = None,
) -> MPCAgent:
    """The upper-bound baselines: `planner` plans with the true simulator. Without `embed` the energy compares
    states (default: mean squared distance to the goal observation's `state`, summed over the planned steps:
    scoring only the last step leaves the first, executed action free once the goal is in reach, and the
    agent then jitters around the goal); with `embed` it compares the embeddings of the rendered frames with
    the goal image's (`energy` then scores the visual latent alone)."""
    energy = energy if energy is not None else GoalEnergy(metric="l2", steps="sum")
    model = SimulatorModel(env, scratch_env, embed, every_step=energy.steps == "sum")
    return MPCAgent(model, planner, energy, execute_steps, subgoal_steps=subgoal_steps)


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95 % by default); (0, 1) when trials == 0."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1 + z * z / trials
    center = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, center - half), min(1.0, center + half)


@dataclass
class EpisodeRecord:
    """One episode: distances/successes hold one value per observation (index 0 = after reset)."""

    seed: int
    success: bool
    final_distance: float
    steps: int
    distances: list[float]
    successes: list[bool]
    plan_times: list[float] = field(default_factory=list)


@dataclass
class EvalReport:
    """Summary over episodes; plan times are seconds per re-plan (None for policies that do not plan).
    `reached_rate`: the share that succeeded at any step, the success of harnesses that end an episode
    at its first success (stable-worldmodel, hence LeWM's numbers); `success_rate` asks it at the end."""

    episodes: list[EpisodeRecord]
    success_rate: float
    success_ci95: tuple[float, float]
    reached_rate: float
    reached_ci95: tuple[float, float]
    mean_final_distance: float
    plan_time_mean: float | None
    plan_time_median: float | None
    replans: int

    @property
    def failed_seeds(self) -> list[int]:
        """Seeds of the failed episodes (to replay them)."""
        return [e.seed for e in self.episodes if not e.success]

    @property
    def lost_seeds(self) -> list[int]:
        """Failed episodes that had succeeded at some step (reached the goal, then left it)."""
        return [e.seed for e in self.episodes if not e.success and any(e.successes)]

    def summary_dict(self) -> dict:
        """Every number of the report but the episodes themselves (JSON-ready)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "episodes"}
        return {**fields, "failed_seeds": self.failed_seeds, "lost_seeds": self.lost_seeds}

    def summary(self) -> str:
        low, high = self.success_ci95
        text = (
            f"success {self.success_rate:.1%} (95% CI {low:.1%}-{high:.1%}) over {len(self.episodes)} "
            f"episodes (reached at some step: {self.reached_rate:.1%}), mean final distance "
            f"{self.mean_final_distance:.4g}"
        )
        if self.plan_time_mean is not None:
            text += (
                f", plan time mean {self.plan_time_mean:.3g} s / median {self.plan_time_median:.3g} s"
                " per re-plan"
            )
        return text


def summarise(episodes: list[EpisodeRecord]) -> EvalReport:
    """The report over episodes (e.g. merged from several processes, each with its own seeds)."""
    wins, reached = sum(e.success for e in episodes), sum(any(e.successes) for e in episodes)
    times = [t for e in episodes for t in e.plan_times]
    return EvalReport(
        episodes=episodes,
        success_rate=wins / len(episodes),
        success_ci95=wilson_interval(wins, len(episodes)),
        reached_rate=reached / len(episodes),
        reached_ci95=wilson_interval(reached, len(episodes)),
        mean_final_distance=statistics.fmean(e.final_distance for e in episodes),
        plan_time_mean=statistics.fmean(times) if times else None,
        plan_time_median=statistics.median(times) if times else None,
        replans=len(times),
    )


def evaluate(
    env: str | Callable[[], gym.Env],
    policy: Policy | Callable[[gym.Env], Policy],
    episodes: int = 50,
    seed: int = 0,
    max_steps: int | None = None,
    gif_dir: str | Path | None = None,
    gif_episodes: int = 3,
    progress: bool = True,
    subgoal_steps: Sequence[int] = (),
    privileged: bool = False,
) -> EvalReport:
    """Run `episodes` episodes (episode i from `reset(seed=seed + i)`) for at most `max_steps` steps
    each (default: the env's registered limit), stopping early when the env terminates or truncates.

    env: a registered env id or a function that builds the env. policy: a policy, or a function that
    builds one for the evaluation env (for baselines that need the env: its action space, its state).
    gif_dir: if given, writes `episode_000.gif`... for the first `gif_episodes` episodes and
    `episodes.png` (distance and success over time). The policy gets the goal as the planning protocol
    allows (`worldjepa.planning.goal`): the goal image, or with a sub-goal schedule (`subgoal_steps`, the
    agent's) the env's sub-goal images in order (the goal last); `privileged` adds the simulator's goal
    states (reference rows only). The GIFs show, beside each frame, the image its next action heads for
    (the policy's `goal_index`).
    """
    if episodes < 1:
        raise UserError(f"evaluate needs episodes >= 1, got {episodes}")
    env = gym.make(env) if isinstance(env, str) else env()
    if max_steps is None:
        max_steps = env.spec.max_episode_steps if env.spec is not None else None
        if max_steps is None:
            raise UserError("the env has no registered step limit: pass max_steps to evaluate")
    policy = policy if hasattr(policy, "act") else policy(env)
    records = []
    bar = tqdm(range(episodes), desc="episodes", unit="ep", disable=not progress)
    for i in bar:
        obs, info = env.reset(seed=seed + i)
        goal_obs = env.unwrapped.goal_observation()
        shown = env.unwrapped.subgoal_observations() if subgoal_steps else [goal_obs]
        policy.reset(goals_from_observations(shown, privileged), steps=max_steps)
        keep_frames = gif_dir is not None and i < gif_episodes
        frames = [obs["pixels"]] if keep_frames else []
        heading = []  # the goal image each action heads for (a policy that plans toward none: the goal)
        distances, successes = [float(info["distance"])], [bool(info["success"])]
        for _ in range(max_steps):
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            heading.append(getattr(policy, "goal_index", len(shown) - 1))
            distances.append(float(info["distance"]))
            successes.append(bool(info["success"]))
            if keep_frames:
                frames.append(obs["pixels"])
            if terminated or truncated:
                break
        plan_times = list(getattr(policy, "plan_times", []))
        records.append(
            EpisodeRecord(
                seed + i, successes[-1], distances[-1], len(distances) - 1, distances, successes, plan_times
            )
        )
        bar.set_postfix(success=f"{sum(r.success for r in records)}/{len(records)}")
        if keep_frames:
            goals = [o["pixels"] for o in shown]
            heading.append(heading[-1])  # the last frame, as the action that led to it
            save_episode_gif(Path(gif_dir) / f"episode_{i:03d}.gif", frames, goals, successes, heading)
    env.close()
    if gif_dir is not None:
        plot_episodes(
            [r.distances for r in records], [r.successes for r in records], Path(gif_dir) / "episodes.png"
        )
    return summarise(records)
