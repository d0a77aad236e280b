"""The receding-horizon (MPC) agent: glue between a world model, a planner and a gym env.

At each re-plan the agent encodes the current observation, plans a whole action sequence toward the
goal embedding, executes its first `execute_steps` env actions, then re-plans from the new observation
(V-JEPA 2-AC executes one action per plan). With a frame-skip-k model a planned step is k env actions,
so a re-plan may execute part of a step. The next plan starts from the previous one shifted by the
executed actions (warm start; the previous plan's elites too, when the planner keeps them), and each
goal image is encoded once per episode (at every re-plan for a world model that reads the goal state
relative to the current observation, `goal_state_follows_current`).

Goals follow the planning protocol (`worldjepa.planning.goal`): images, one or an ordered list of
sub-goals ending with the goal. With `subgoal_steps` (V-JEPA 2-AC's recipe for multi-stage tasks) the
agent plans toward sub-goal i for subgoal_steps[i] env steps, then the next, and the goal for the rest
of the episode: a fixed schedule that never looks at what the robot has achieved. With `subgoal_energy`
the agent also moves on as soon as the energy of the current observation to its sub-goal (the planning
energy, one frame, no prediction) falls below that threshold, checked at every re-plan; each sub-goal then
waits at most its scheduled steps, counted from the switch to it.

`hold_actions` plans one env action per model step and holds it for the step's k env actions: the
search space shrinks k-fold and every candidate moves in straight segments, where k independent
actions per step mostly cancel out (a detour around a wall needs many moves the same way).

`plan_to_episode_end` (off: V-JEPA 2-AC) plans no further than the episode's last step, given to
`reset`: the horizon shrinks as the end nears. A goal energy scores where a plan ends; with a fixed
horizon, near the end of an episode that point lies after it, so a plan that leaves the goal and comes
back scores as well as one that stays, and the agent leaves the goal when the episode is judged.

A world model that tracks an object (`tracks_objects`) reads its motion from two observations: the agent
passes it the latent of its previous re-plan and the env actions taken since.

`switch_actions` names env action dimensions that are on/off commands (a gripper: closed or open). The
planner searches them as continuous values like the others; the model and the env get the bound on the
value's side of the bounds' midpoint. A continuous gripper command lets the planner pick a half-closed
hand that the (image-blind) proprio head cannot tell from a firm grip: the fingers touch the block
without squeezing it, and it slips out when carried.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from worldjepa.errors import UserError
from worldjepa.planning.energy import GoalEnergy
from worldjepa.planning.goal import Goal
from worldjepa.planning.planner_config import PlannerConfig
from worldjepa.planning.sampling_planner import PlanResult, SamplingPlanner, shift_plan
from worldjepa.planning.world_model import Latent, WorldModel


def obs_to_batch(obs: dict[str, np.ndarray], device: torch.device | str = "cpu") -> dict[str, Tensor]:
    """One env observation -> a batch of one: pixels [1, H, W, 3] uint8, state [1, S] float32."""
    return {
        "pixels": torch.from_numpy(np.ascontiguousarray(obs["pixels"]))[None].to(device),
        "state": torch.as_tensor(obs["state"], dtype=torch.float32)[None].to(device),
    }


class MPCAgent:
    """A goal-reaching policy: `reset(goals)` once per episode, then `act(obs)` every step.

    plan_times: wall-clock seconds of each re-plan (encode + plan) since the last reset.
    last_plan: the planner's result at the last re-plan; goal: the goal latent it planned toward.
    goal_index: the goal image the next action heads for (0 = the first sub-goal, the goal last).
    energies: the energy of the observation to the goal image planned toward, at each re-plan.
    """

    def __init__(
        self,
        world_model: WorldModel,
        planner: SamplingPlanner,
        energy: GoalEnergy | None = None,
        execute_steps: int = 1,
        device: torch.device | str = "cpu",
        frame_skip: int = 1,
        hold_actions: bool = False,
        subgoal_steps: Sequence[int] = (),
        switch_actions: Sequence[int] = (),
        subgoal_energy: float | None = None,
        goal_read_scale: float | None = None,
        plan_to_episode_end: bool = False,
    ) -> None:
        if not hold_actions and planner.action_dim % frame_skip:
            raise UserError(
                f"planner action_dim {planner.action_dim} is not a multiple of frame_skip {frame_skip}"
            )
        if hold_actions and execute_steps % frame_skip:
            raise UserError(
                f"with hold_actions, execute_steps ({execute_steps}) must be a multiple of frame_skip "
                f"({frame_skip}): a re-plan executes whole model steps"
            )
        if not 1 <= execute_steps <= planner.horizon * frame_skip:
            raise UserError(
                f"execute_steps (env actions per re-plan) must be in [1, planner horizon x frame_skip = "
                f"{planner.horizon * frame_skip}], got {execute_steps}"
            )
        if any(steps < 1 for steps in subgoal_steps):
            raise UserError(f"subgoal steps must be positive step counts, got {list(subgoal_steps)}")
        env_dim = planner.action_dim if hold_actions else planner.action_dim // frame_skip
        if any(not 0 <= dim < env_dim for dim in switch_actions):
            raise UserError(
                f"switch actions must be env action dimensions in [0, {env_dim}), got {list(switch_actions)}"
            )
        switch = torch.zeros(env_dim, dtype=torch.bool)
        switch[list(switch_actions)] = True
        self.switch = switch.repeat(planner.action_dim // env_dim)  # [A'], over the planner's values
        if not torch.isfinite(torch.stack([planner.low, planner.high])[:, self.switch]).all():
            raise UserError("switch actions need finite action bounds (the two commands they switch between)")
        self.world_model, self.planner = world_model, planner
        self.energy = energy if energy is not None else GoalEnergy()
        self.execute_steps, self.device = execute_steps, torch.device(device)
        self.frame_skip, self.hold_actions = frame_skip, hold_actions
        self.subgoal_steps, self.subgoal_energy = list(subgoal_steps), subgoal_energy
        self.follow = getattr(world_model, "goal_state_follows_current", False)
        self.tracks = getattr(world_model, "tracks_objects", False)
        self.start: Latent | None = None  # the latent of the last re-plan, and the env actions since
        self.steps_since_start = 0
        self.goal_read_scale = goal_read_scale
        self.plan_to_episode_end = plan_to_episode_end
        self.steps_left: int | None = None  # env steps left in the episode (None: `reset` was not told)
        self.goal_reads: list[tuple[Tensor, Tensor]] = []  # (weight, weight x read) sums per goal image
        self.goal_images: list[Goal] = []
        self.goals: list[Latent] = []  # encoded once per episode, unless the goal state follows the current
        self.goal: Latent | None = None  # the goal latent of the last re-plan
        self.goal_index, self.steps_toward_goal = 0, 0
        self.queue: deque[np.ndarray] = deque()
        self.last_plan: PlanResult | None = None
        self.plan_times: list[float] = []
        self.energies: list[float] = []

    @torch.inference_mode()
    def reset(self, goals: Sequence[Goal], steps: int | None = None) -> None:
        """Start an episode of `steps` env steps (its time limit; None = unknown) toward `goals` (sub-goal
        images in order, the goal last; one image without a sub-goal schedule): encode each once, forget
        the old plan, restart the noise."""
        if self.plan_to_episode_end and steps is None:
            raise UserError(
                "planner.plan_to_episode_end needs the episode's step count: call reset(goals, steps=...)"
            )
        if len(goals) != len(self.subgoal_steps) + 1:
            raise UserError(
                f"the agent's sub-goal schedule has {len(self.subgoal_steps)} switches, so it plans toward "
                f"{len(self.subgoal_steps) + 1} goal images (sub-goals then the goal), got {len(goals)}"
            )
        self.goal_images = list(goals)
        self.goals = [] if self.follow else [self.world_model.encode_goal(goal) for goal in goals]
        self.goal, self.goal_index, self.steps_toward_goal = None, 0, 0
        self.plan_times, self.energies = [], []
        self.steps_left = steps
        self.goal_reads = [(torch.zeros(()), torch.zeros(())) for _ in goals]
        self.start, self.steps_since_start = None, 0
        self._restart()

    def _restart(self) -> None:
        self.queue.clear()
        self.last_plan = None
        self.planner.reseed()

    @torch.inference_mode()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The next action [A] float32: re-plan when the queue of planned actions is empty."""
        if not self.goal_images:
            raise UserError("call MPCAgent.reset(goals) before act(obs)")
        if self._on_subgoal() and self.steps_toward_goal == self.subgoal_steps[self.goal_index]:
            self._next_goal()
        if not self.queue:
            self._replan(obs)
        self.steps_toward_goal += 1
        self.steps_since_start += 1
        if self.steps_left is not None:
            self.steps_left -= 1
        return self.queue.popleft()

    def _on_subgoal(self) -> bool:
        return self.goal_index < len(self.subgoal_steps)

    def _next_goal(self) -> None:
        """Move on to the next goal image and plan afresh toward it."""
        self.goal_index, self.steps_toward_goal = self.goal_index + 1, 0
        self._restart()

    def _goal_latent(self, batch: dict[str, Tensor]) -> Latent:
        if not self.follow:
            return self.goals[self.goal_index]
        goal = self.world_model.encode_goal(self.goal_images[self.goal_index], batch)
        if self.goal_read_scale is None or goal.proprio is None:
            return goal
        # The goal state is one fixed point read again from every observation: pool the reads, trusting
        # each by how near it was read (a read of a small change is sharper than one across the table),
        # near in the values the energy compares (a readout's reacher velocities are noise, weighted 0).
        distance = self.energy.weigh_state(goal.proprio - batch["state"].to(goal.proprio)).norm()
        weight = 1.0 / (distance**2 + self.goal_read_scale**2)
        total, weighted = self.goal_reads[self.goal_index]
        total, weighted = total + weight, weighted + weight * goal.proprio
        self.goal_reads[self.goal_index] = (total, weighted)
        return Latent(goal.visual, weighted / total)

    def _replan(self, obs: dict[str, np.ndarray]) -> None:
        tic = time.perf_counter()
        batch = obs_to_batch(obs, self.device)
        if self.tracks:
            start = self.world_model.encode(batch, self.start, self.steps_since_start)
        else:
            start = self.world_model.encode(batch)
        self.start, self.steps_since_start = start, 0
        goal = self._goal_latent(batch)
        now = Latent(start.visual[:, None], None if start.proprio is None else start.proprio[:, None])
        energy = float(self.energy(now, goal))
        if self.subgoal_energy is not None and self._on_subgoal() and energy < self.subgoal_energy:
            self._next_goal()  # this sub-goal is reached
            goal = self._goal_latent(batch)
            energy = float(self.energy(now, goal))
        self.goal = goal
        self.energies.append(energy)
        warm = elites = None
        if self.last_plan is not None:
            warm, elites = self._shift(self.last_plan.actions), self._shift(self.last_plan.elites)
        result = self.planner.plan(
            self.unroll, start, lambda pred: self.energy(pred, goal), warm, elites, self._horizon()
        )
        actions = self.env_actions(result.actions)[: self.execute_steps].float().cpu().numpy()
        self.plan_times.append(time.perf_counter() - tic)
        self.last_plan = result
        self.queue.extend(actions)

    def _horizon(self) -> int:
        """Model steps to plan: the planner's horizon, or with plan_to_episode_end no more than the steps
        left in the episode (a model step is frame_skip env actions; the last may run past the end)."""
        if not self.plan_to_episode_end or self.steps_left is None:
            return self.planner.horizon
        return min(self.planner.horizon, math.ceil(max(1, self.steps_left) / self.frame_skip))

    def _shift(self, plans: Tensor) -> Tensor:
        """Plans [..., H, A'] without the env actions executed since they were planned (the warm start)."""
        if self.hold_actions:
            return shift_plan(plans, self.execute_steps // self.frame_skip)
        return shift_plan(self.env_actions(plans), self.execute_steps).reshape(plans.shape)

    def unroll(self, start: Latent, plans: Tensor) -> Latent:
        """The world model's unroll of candidate plans [C, H, A'] (A' = k*A, or A when holding actions);
        for an energy that scores states alone, without predicting frames."""
        if not self.energy.visual_weight:
            return self.world_model.unroll(start, self.model_actions(plans), frames=False)
        return self.world_model.unroll(start, self.model_actions(plans))

    def model_actions(self, plans: Tensor) -> Tensor:
        """Plans [..., H, A'] as the model's steps [..., H, k*A]: switch actions set to a bound, held
        actions repeated k times."""
        if self.switch.any():
            low, high = self.planner.low.to(plans.device), self.planner.high.to(plans.device)
            switched = torch.where(plans >= (low + high) / 2, high, low)
            plans = torch.where(self.switch.to(plans.device), switched, plans)
        return torch.cat([plans] * self.frame_skip, -1) if self.hold_actions else plans

    def env_actions(self, plan: Tensor) -> Tensor:
        """Plans [..., H, A'] as the env actions they stand for, [..., H*k, A] (a frame-skip-k step is k
        actions)."""
        actions = self.model_actions(plan)
        env_dim = actions.shape[-1] // self.frame_skip
        return actions.reshape(*plan.shape[:-2], plan.shape[-2] * self.frame_skip, env_dim)


def build_agent(world_model: WorldModel, cfg: PlannerConfig, action_space: gym.spaces.Box) -> MPCAgent:
    """The receding-horizon agent that plans with `world_model` as the `planner` section says. A model
    trained with frame skip k (its steps take k env actions) plans k-action steps, or one action per step
    held k times with `hold_actions`; `subgoal_steps` is its sub-goal schedule."""
    env_dim = action_space.shape[0]
    frame_skip, rest = divmod(world_model.action_dim, env_dim)
    if rest or not frame_skip:
        raise UserError(
            f"the world model takes {world_model.action_dim} action values per step; the env's actions have "
            f"{env_dim}: it was trained on another env"
        )
    return MPCAgent(
        world_model,
        cfg.build(action_space, frame_skip=1 if cfg.hold_actions else frame_skip),
        cfg.energy,
        cfg.execute_steps,
        device=world_model.device,
        frame_skip=frame_skip,
        hold_actions=cfg.hold_actions,
        subgoal_steps=cfg.subgoal_steps,
        switch_actions=cfg.switch_actions,
        subgoal_energy=cfg.subgoal_energy,
        goal_read_scale=cfg.goal_read_scale,
        plan_to_episode_end=cfg.plan_to_episode_end,
    )
