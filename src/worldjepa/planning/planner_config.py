"""The `planner:` section of a world-model preset: which sampling planner, its search settings, bounds
and energy, in one dataclass whose fields are the only place these defaults live."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import gymnasium as gym
import torch

from worldjepa.errors import UserError
from worldjepa.planning.cem import CEM
from worldjepa.planning.energy import GoalEnergy
from worldjepa.planning.mppi import MPPI
from worldjepa.planning.sampling_planner import SamplingPlanner, per_dim_bound

Bound = float | list[float] | None


@dataclass
class PlannerConfig:
    """kind: cem (V-JEPA 2-AC's planner) | mppi. horizon: model steps planned; samples x iterations:
    candidates scored per re-plan; init_std: the Gaussian's starting std (CEM; MPPI keeps it fixed);
    top_k / momentum / min_std: CEM's elites, smoothing and std floor; temperature: MPPI's lambda.
    noise_beta: the sampling noise's colour along the horizon, power spectrum 1 / f^beta (0: white, as
    V-JEPA 2-AC; 2: iCEM's, smooth candidates that make long detours). keep_elites: lowest-energy
    candidates carried into the next iteration and, shifted, into the next re-plan (iCEM; 0: off, as
    V-JEPA 2-AC). zero_candidate: the all-zero plan (holding still, for moves) is a candidate of every
    iteration (off: V-JEPA 2-AC).
    execute_steps: env actions run per re-plan. action_cost: weight of the mean |action| in the energy
    (holds the agent still at the goal; 0 = off, as V-JEPA 2-AC). action_low / action_high: planner
    bounds inside the env's (a number or one per action dimension; None = the env's). hold_actions: one
    action per model step, held for its frame-skip env actions. switch_actions: env action dimensions that
    are on/off commands (a gripper), executed as the low or high bound (`worldjepa.planning.agent`).
    subgoal_steps: the sub-goal schedule (env steps toward each sub-goal image before the next; [] = the
    goal image only). subgoal_energy: move on to the next sub-goal early once the observation's energy to
    the current one falls below this (None: the schedule alone). goal_read_scale: with a world model
    that re-reads the goal state at every re-plan (a pair readout), plan toward the mean of all reads of
    this goal so far, each weighted by 1 / (d^2 + scale^2), d its distance from the current state (reads
    near the goal are sharper); None: the latest read alone. plan_to_episode_end: plan no further than the
    episode's last step, the horizon shrinking near it (off: V-JEPA 2-AC). energy: the goal energy."""

    kind: Literal["cem", "mppi"] = "cem"
    horizon: int = 3
    samples: int = 100
    top_k: int = 10
    iterations: int = 5
    momentum: float = 0.15
    init_std: float = 0.5
    min_std: float = 0.05
    temperature: float = 0.01
    noise_beta: float = 0.0
    keep_elites: int = 0
    zero_candidate: bool = False
    execute_steps: int = 1
    action_cost: float = 0.0
    action_low: Bound = None
    action_high: Bound = None
    hold_actions: bool = False
    switch_actions: list[int] = field(default_factory=list)
    subgoal_steps: list[int] = field(default_factory=list)
    subgoal_energy: float | None = None
    goal_read_scale: float | None = None
    plan_to_episode_end: bool = False
    seed: int = 0
    energy: GoalEnergy = field(default_factory=GoalEnergy)

    def __post_init__(self) -> None:
        if self.goal_read_scale is not None and not self.goal_read_scale > 0:
            raise UserError(f"planner.goal_read_scale must be > 0 (or null), got {self.goal_read_scale}")
        if self.kind == "cem" and not 1 <= self.top_k <= self.samples:
            raise UserError(f"planner.top_k must be in [1, planner.samples={self.samples}], got {self.top_k}")

    def build(
        self, action_space: gym.spaces.Box, frame_skip: int = 1, samples: int | None = None
    ) -> SamplingPlanner:
        """The planner, bounded by the env's action space and `action_low` / `action_high`; with frame skip
        k a planned step is k env actions (k * A values, each bounded like one action). `samples`
        replaces the preset's candidate count (the true-simulator baseline steps an env per candidate)."""
        low, high = action_bounds(action_space, self.action_low, self.action_high)
        search = {
            "horizon": self.horizon,
            "samples": samples or self.samples,
            "iterations": self.iterations,
            "init_std": self.init_std,
            "seed": self.seed,
            "action_cost": self.action_cost,
            "noise_beta": self.noise_beta,
            "keep_elites": self.keep_elites,
            "zero_candidate": self.zero_candidate,
            "low": low.repeat(frame_skip),
            "high": high.repeat(frame_skip),
        }
        action_dim = action_space.shape[0] * frame_skip
        if self.kind == "cem":
            return CEM(action_dim, top_k=self.top_k, momentum=self.momentum, min_std=self.min_std, **search)
        return MPPI(action_dim, temperature=self.temperature, **search)


def action_bounds(action_space: gym.spaces.Box, low: Bound, high: Bound) -> tuple[torch.Tensor, torch.Tensor]:
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
