"""Latent planning: energies, CEM / MPPI, the MPC agent and closed-loop evaluation.

Everything runs on a toy world defined here: a 2-D point moved by its action, whose exact latent
model is z_{t+1} = z_t + B a_t, so optimal plans are known in closed form.
"""

from __future__ import annotations

import dataclasses
import itertools

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from worldjepa.envs.base import GoalEnv
from worldjepa.errors import UserError
from worldjepa.eval.closed_loop import (
    EpisodeRecord,
    RandomPolicy,
    SimulatorModel,
    evaluate,
    simulator_agent,
    summarise,
    wilson_interval,
)
from worldjepa.planning import (
    CEM,
    MPPI,
    GoalEnergy,
    Latent,
    MPCAgent,
    PlannerConfig,
    PlanResult,
    build_agent,
    shift_plan,
)
from worldjepa.planning.goal import GoalImage, PrivilegedGoal
from worldjepa.planning.sampling_planner import EXTENSIONS_OFF
from worldjepa.viz.episodes import save_episode_gif

STEP = 0.25  # action bound of the toy env


@pytest.fixture(autouse=True)
def one_thread():
    """The toy tensors are tiny: extra intra-op threads only add overhead, and on a loaded 2-core
    machine their spin-waits made each re-plan ~400x slower (0.2 s instead of 0.5 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class PointEnv(GoalEnv, gym.Env):
    """A point in [-1, 1]^2 moved by the action; pixels are a 16x16 image with the point drawn
    anti-aliased (its intensity split over the 2x2 nearest pixels), so a picture shows the exact position."""

    success_criterion = "distance to the goal < 0.05"

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Dict(
            pixels=gym.spaces.Box(0, 255, (16, 16, 3), np.uint8),
            state=gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
        )
        self.action_space = gym.spaces.Box(-STEP, STEP, (2,), np.float32)
        self.pos = self.goal = np.zeros(2, np.float32)

    def reset(self, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.pos, self.goal = self.np_random.uniform(-0.9, 0.9, (2, 2)).astype(np.float32)
        return self._obs(self.pos), self._info()

    def step(self, action):
        self.pos = np.clip(self.pos + np.clip(action, -STEP, STEP), -1, 1).astype(np.float32)
        return self._obs(self.pos), 0.0, False, False, self._info()

    def _obs(self, pos: np.ndarray) -> dict[str, np.ndarray]:
        pixels = np.zeros((16, 16, 3), np.uint8)
        row, col = (pos + 1) / 2 * 15
        r0, c0 = min(int(row), 14), min(int(col), 14)
        fr, fc = row - r0, col - c0
        weights = np.outer([1 - fr, fr], [1 - fc, fc])
        pixels[r0 : r0 + 2, c0 : c0 + 2] = np.round(255 * weights)[..., None]
        return {"pixels": pixels, "state": pos.copy()}

    def _info(self) -> dict:
        distance = float(np.linalg.norm(self.pos - self.goal))
        return {"distance": distance, "success": distance < 0.05}

    def goal_observation(self):
        return self._obs(self.goal)

    def get_sim_state(self):
        return self.pos.copy()

    def set_sim_state(self, state) -> None:
        self.pos = state.copy()


def position_in(pixels: np.ndarray) -> np.ndarray:
    """The point's position read from a PointEnv picture: the intensity-weighted centroid."""
    weights = pixels[..., 0].astype(np.float64)
    rows, cols = np.indices(weights.shape)
    centroid = np.array([(rows * weights).sum(), (cols * weights).sum()]) / weights.sum()
    return (centroid / 15 * 2 - 1).astype(np.float32)


class LinearModel:
    """Exact latent model z_{t+1} = z_t + a_t B^T with z = state as one token ([B, 1, 2]); a goal's state
    is read from its image (the planning protocol), unless a privileged reference hands it over. Counts
    `unroll` calls and keeps every action batch it saw."""

    def __init__(self, b: torch.Tensor | None = None) -> None:
        self.b = torch.eye(2) if b is None else b
        self.calls: list[torch.Tensor] = []

    def encode(self, obs):
        return Latent(obs["state"].float()[:, None, :])

    def encode_goal(self, goal):
        state = goal.state if isinstance(goal, PrivilegedGoal) else position_in(goal.image)
        return Latent(torch.as_tensor(state, dtype=torch.float32)[None, None, :])

    def unroll(self, latent, actions):
        self.calls.append(actions.clone())
        steps = (actions @ self.b.T).cumsum(1)  # [B, H, 2]
        return Latent(latent.visual[:, None] + steps[:, :, None, :])


B = torch.tensor([[1.0, 0.5], [0.0, 2.0]])
GOAL = torch.tensor([0.3, -0.4])


def quadratic_problem(horizon: int = 3):
    """Start at 0, goal GOAL, energy = sum over steps of the squared distance: the unique optimum
    jumps there in one step (a_0 = B^-1 GOAL) and then stays (a_t = 0)."""
    model = LinearModel(B)
    start = Latent(torch.zeros(1, 1, 2))
    goal = Latent(GOAL.view(1, 1, 2))
    energy = GoalEnergy(metric="l2", steps="sum")
    optimum = torch.zeros(horizon, 2)
    optimum[0] = torch.linalg.solve(B, GOAL)
    return model, start, (lambda pred: energy(pred, goal)), optimum


#: CEM's settings that these tests do not vary: V-JEPA 2-AC's momentum, no std floor, no control cost,
#: white noise, no elites carried over, no zero plan.
CEM_PAPER = dict(momentum=0.15, min_std=0.0, seed=0, **EXTENSIONS_OFF)


def make_cem(**kw):
    args = dict(
        action_dim=2, horizon=3, samples=200, top_k=10, iterations=30, init_std=0.5, min_std=0.01, seed=0,
        momentum=0.15, **EXTENSIONS_OFF,
    )  # fmt: skip
    return CEM(**{**args, **kw})


def make_mppi(**kw):
    args = dict(
        action_dim=2,
        horizon=3,
        samples=200,
        iterations=30,
        temperature=1e-3,
        init_std=0.05,
        seed=0,
        **EXTENSIONS_OFF,
    )
    return MPPI(**{**args, **kw})


PLANNERS = [pytest.param(make_cem, id="cem"), pytest.param(make_mppi, id="mppi")]


# ---- energy ------------------------------------------------------------------------------------


def test_energy_metrics_steps_and_proprio():
    pred = Latent(torch.tensor([[[[1.0, -1.0]], [[2.0, 0.0]]]]), torch.tensor([[[1.0], [3.0]]]))  # C=1, H=2
    goal = Latent(torch.zeros(1, 1, 2), torch.zeros(1, 1))
    assert GoalEnergy()(pred, goal).tolist() == [1.0]  # mean |2, 0| at the last step
    assert GoalEnergy(metric="l2")(pred, goal).tolist() == [2.0]
    assert GoalEnergy(steps="sum")(pred, goal).tolist() == [2.0]
    assert GoalEnergy(proprio_weight=0.5)(pred, goal).tolist() == [2.5]
    assert GoalEnergy(proprio_weight=0.5, visual_weight=2.0)(pred, goal).tolist() == [3.5]
    assert GoalEnergy(proprio_weight=0.5, visual_weight=0.0)(pred, goal).tolist() == [1.5]  # the state alone
    with pytest.raises(UserError, match="not both 0"):
        GoalEnergy(visual_weight=0.0)
    with pytest.raises(UserError):
        GoalEnergy(proprio_weight=1.0)(Latent(pred.visual), goal)
    with pytest.raises(UserError):
        GoalEnergy(metric="cos")


def test_energy_state_weights_make_one_state_dimension_count_more():
    visual = torch.zeros(1, 1, 1, 2)
    pred = Latent(visual, torch.tensor([[[0.2, 0.01]]]))  # far in dimension 0, close in dimension 1
    other = Latent(visual, torch.tensor([[[0.0, 0.05]]]))  # the other way round
    goal = Latent(torch.zeros(1, 1, 2), torch.zeros(1, 2))
    plain = GoalEnergy(proprio_weight=1.0)
    weighted = GoalEnergy(proprio_weight=1.0, state_weights=[1.0, 10.0])
    assert plain(pred, goal) > plain(other, goal) and weighted(pred, goal) < weighted(other, goal)
    torch.testing.assert_close(weighted(other, goal), torch.tensor([0.25]))  # mean of 0 and 10 x 0.05
    with pytest.raises(UserError, match="state_weights has 3 values for 2-D states"):
        GoalEnergy(proprio_weight=1.0, state_weights=[1.0, 1.0, 1.0])(pred, goal)


def test_energy_is_vectorized_over_candidates_and_tokens():
    pred = Latent(torch.randn(7, 4, 16, 8))
    goal = Latent(torch.randn(1, 16, 8))
    energies = GoalEnergy()(pred, goal)
    assert energies.shape == (7,)
    torch.testing.assert_close(energies[3], (pred.visual[3, -1] - goal.visual[0]).abs().mean())


# ---- planners ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", PLANNERS)
def test_planner_finds_known_optimum(make):
    model, start, objective, optimum = quadratic_problem()
    result = make().plan(model.unroll, start, objective)
    assert result.actions.shape == (3, 2)
    assert (result.actions - optimum).abs().max() < 0.03, (result.actions, optimum)
    assert result.energy == pytest.approx(
        float(objective(model.unroll(start, result.actions[None]))), abs=1e-6
    )


@pytest.mark.parametrize("make", PLANNERS)
def test_energies_decrease_over_iterations(make):
    model, start, objective, _ = quadratic_problem()
    result = make().plan(model.unroll, start, objective)
    curve = result.energies_per_iter
    assert result.iterations == len(curve) == 30
    assert curve[-1] < 0.01 * curve[0]
    assert result.energy == pytest.approx(min(curve))


@pytest.mark.parametrize("make", PLANNERS)
def test_one_batched_unroll_per_iteration(make):
    model, start, objective, _ = quadratic_problem()
    make(iterations=4, samples=50).plan(model.unroll, start, objective)
    assert len(model.calls) == 4
    assert all(call.shape == (50, 3, 2) for call in model.calls)


@pytest.mark.parametrize("make", PLANNERS)
def test_planner_respects_action_bounds(make):
    model, start, objective, optimum = quadratic_problem()
    low, high = [-0.1, -0.05], [0.1, 0.05]  # the optimum's first action lies outside these
    assert not ((optimum[0] >= torch.tensor(low)) & (optimum[0] <= torch.tensor(high))).all()
    result = make(low=low, high=high).plan(model.unroll, start, objective)
    for actions in [*model.calls, result.actions[None]]:
        assert (actions >= torch.tensor(low)).all() and (actions <= torch.tensor(high)).all()


@pytest.mark.parametrize("make", PLANNERS)
def test_action_cost_holds_still_at_the_goal(make):
    """Start on the goal, last-step energy: every plan that comes back ties, so without a control cost
    a wandering warm start (out and back) stays the plan; with one the agent stays put."""
    model = LinearModel(B)
    start = goal = Latent(GOAL.view(1, 1, 2))
    energy = GoalEnergy(metric="l2", steps="last")

    def objective(pred):
        return energy(pred, goal)

    wander = torch.tensor([[0.2, 0.0], [-0.2, 0.0], [0.0, 0.0]])
    free = make().plan(model.unroll, start, objective, warm_start=wander)
    held = make(action_cost=0.1).plan(model.unroll, start, objective, warm_start=wander)
    assert torch.equal(free.actions, wander)
    assert held.actions.abs().max() < 0.03, held.actions
    assert held.energy == pytest.approx(
        float(objective(model.unroll(start, held.actions[None]))) + 0.1 * float(held.actions.abs().mean()),
        abs=1e-6,
    )
    with pytest.raises(UserError, match="action_cost"):
        make(action_cost=-1.0)


@pytest.mark.parametrize("make", PLANNERS)
def test_zero_candidate_holds_still_when_nothing_sampled_does_better(make):
    """Start on the goal with a warm start that walks away and little noise: no sampled plan comes back,
    so the planner returns a plan ending off the goal, unless the all-zero plan is a candidate."""
    model = LinearModel(B)
    start = goal = Latent(GOAL.view(1, 1, 2))
    energy = GoalEnergy(metric="l2", steps="last")

    def objective(pred):
        return energy(pred, goal)

    away = torch.tensor([[0.2, 0.0], [0.0, 0.0], [0.0, 0.0]])
    settings = dict(iterations=1, samples=20, init_std=0.01)
    drifting = make(**settings).plan(model.unroll, start, objective, warm_start=away)
    still = make(**settings, zero_candidate=True).plan(model.unroll, start, objective, warm_start=away)
    assert drifting.energy > 0.01 and (drifting.actions[0] - away[0]).abs().max() < 0.05
    assert still.energy == 0.0 and torch.equal(still.actions, torch.zeros(3, 2))
    assert torch.equal(model.calls[-1][1], torch.zeros(3, 2)) and model.calls[-1].shape[0] == 20
    with pytest.raises(UserError, match="keep_elites"):
        make(samples=10, keep_elites=8, zero_candidate=True)


@pytest.mark.parametrize("make", PLANNERS)
def test_planner_is_seeded(make):
    model, start, objective, _ = quadratic_problem()
    planner = make(iterations=3)
    first = planner.plan(model.unroll, start, objective)
    planner.reseed()
    again = planner.plan(model.unroll, start, objective)
    other = make(iterations=3, seed=1).plan(model.unroll, start, objective)
    assert torch.equal(first.actions, again.actions)
    assert not torch.equal(first.actions, other.actions)


@pytest.mark.parametrize("make", PLANNERS)
def test_coloured_noise_samples_long_moves_one_way(make):
    """noise_beta > 0 (iCEM) correlates a candidate's steps: each step's noise keeps unit variance, while
    neighbours move alike, so candidates travel farther in one direction. A goal 12 steps of the largest
    action away, bounded actions, one iteration from rest: coloured candidates get nearer it."""
    horizon, goal = 12, Latent(torch.tensor([[[12.0, 0.0]]]))
    energy = GoalEnergy(steps="last")

    def nearest(beta: float) -> tuple[float, torch.Tensor]:
        planner = make(horizon=horizon, samples=256, iterations=1, init_std=1.0, low=-1.0, high=1.0,
                       noise_beta=beta)  # fmt: skip
        noise = planner._noise(torch.Generator().manual_seed(0), torch.device("cpu"), 255, planner.horizon)
        result = planner.plan(LinearModel().unroll, Latent(torch.zeros(1, 1, 2)), lambda p: energy(p, goal))
        return result.energy, noise

    white, white_noise = nearest(0.0)
    coloured, coloured_noise = nearest(2.0)
    for noise in (white_noise, coloured_noise):
        assert noise.shape == (255, horizon, 2)
        torch.testing.assert_close(noise.var((0, 2)), torch.ones(horizon), atol=0.2, rtol=0)
    neighbours = [torch.corrcoef(n[:, :2, 0].T)[0, 1] for n in (white_noise, coloured_noise)]
    assert abs(neighbours[0]) < 0.15 and neighbours[1] > 0.5, neighbours
    assert coloured < 0.7 * white, (coloured, white)  # 2.07 vs 3.50
    with pytest.raises(UserError, match="noise_beta"):
        make(noise_beta=-1.0)


def test_warm_start_shifts_previous_plan():
    plan = torch.arange(8.0).view(4, 2)
    assert shift_plan(plan, 1).tolist() == [[2, 3], [4, 5], [6, 7], [0, 0]]
    assert shift_plan(plan, 3).tolist() == [[6, 7], [0, 0], [0, 0], [0, 0]]
    # The planner starts from the warm start: candidate 0 of the first iteration is that mean (clipped).
    model, start, objective, _ = quadratic_problem()
    warm = torch.tensor([[0.3, 0.0], [0.0, 0.0], [0.0, -0.1]])
    make_cem(iterations=1, low=-0.2, high=0.2).plan(model.unroll, start, objective, warm_start=warm)
    assert torch.equal(model.calls[0][0], warm.clamp(-0.2, 0.2))


@pytest.mark.parametrize("make", PLANNERS)
def test_kept_elites_join_the_next_iteration(make):
    """keep_elites K: the K lowest-energy candidates of an iteration are candidates 1..K of the next one
    (after the mean), fresh samples fill the rest, and the last iteration's K best come back, best first;
    warm elites open the first iteration. K = 0 samples exactly as before (same noise stream)."""
    model, start, objective, optimum = quadratic_problem()
    warm = torch.full((4, 3, 2), 0.01)
    result = make(iterations=3, samples=50, keep_elites=3).plan(
        model.unroll, start, objective, warm_elites=warm
    )
    calls = list(model.calls)
    assert all(call.shape == (50, 3, 2) for call in calls)
    assert torch.equal(calls[0][1:4], warm[:3])
    for before, after in itertools.pairwise(calls):
        energies = objective(model.unroll(start, before))
        assert torch.equal(after[1:4], before[energies.topk(3, largest=False).indices])
    energies = objective(model.unroll(start, calls[-1]))
    assert torch.equal(result.elites, calls[-1][energies.argsort()[:3]])
    assert float(objective(model.unroll(start, result.elites[:1]))) == pytest.approx(
        result.energies_per_iter[-1]
    )
    # The carried elites keep converging to the optimum; K = 0 returns no elites and ignores warm ones.
    model, start, objective, _ = quadratic_problem()
    assert (make(keep_elites=3).plan(model.unroll, start, objective).actions - optimum).abs().max() < 0.03
    plain = make(iterations=2).plan(model.unroll, start, objective, warm_elites=warm)
    assert plain.elites.shape == (0, 3, 2)
    assert torch.equal(plain.actions, make(iterations=2).plan(model.unroll, start, objective).actions)
    with pytest.raises(UserError, match="keep_elites"):
        make(samples=10, keep_elites=9)
    with pytest.raises(UserError, match="warm_elites"):
        make(keep_elites=2).plan(model.unroll, start, objective, warm_elites=torch.zeros(2, 5, 2))


def test_planner_rejects_bad_settings():
    with pytest.raises(UserError):
        make_cem(top_k=500)
    with pytest.raises(UserError):
        make_cem(low=[0.0, 0.0, 0.0])
    with pytest.raises(UserError):
        make_mppi(temperature=0.0)
    model, start, objective, _ = quadratic_problem()
    with pytest.raises(UserError):
        make_cem().plan(model.unroll, start, objective, warm_start=torch.zeros(5, 2))


# ---- MPC agent and closed-loop evaluation --------------------------------------------------------


def make_agent(
    execute_steps: int = 1,
    subgoal_steps: tuple[int, ...] = (),
    subgoal_energy: float | None = None,
    keep_elites: int = 0,
) -> MPCAgent:
    planner = CEM(
        2, horizon=3, samples=64, top_k=8, iterations=4, init_std=STEP, low=-STEP, high=STEP,
        **{**CEM_PAPER, "keep_elites": keep_elites},
    )  # fmt: skip
    energy = GoalEnergy(steps="sum")
    return MPCAgent(
        LinearModel(),
        planner,
        energy,
        execute_steps,
        subgoal_steps=subgoal_steps,
        subgoal_energy=subgoal_energy,
    )


@pytest.mark.parametrize("make", PLANNERS)
def test_a_shorter_horizon_scores_where_it_ends_and_pads_with_zeros(make):
    """On the goal with a warm start that steps out and back: over 3 steps it scores as well as staying,
    over 2 (the episode's last) it ends off the goal. A 2-step plan unrolls [C, 2, A] candidates from the
    warm start's first 2 steps and comes back 3 steps long, zeros after the 2nd."""
    model = LinearModel()
    start = goal = Latent(GOAL.view(1, 1, 2))
    energy = GoalEnergy(metric="l2", steps="last")
    out_and_back = torch.tensor([[0.0, 0.0], [0.2, 0.0], [-0.2, 0.0]])
    settings = dict(iterations=1, samples=20, init_std=0.01, keep_elites=2)
    full = make(**settings).plan(model.unroll, start, lambda p: energy(p, goal), warm_start=out_and_back)
    assert full.energy < 1e-3 and full.actions[1, 0] > 0.15  # leaves the goal: it comes back in time
    short = make(**settings).plan(model.unroll, start, lambda p: energy(p, goal), out_and_back, horizon=2)
    assert model.calls[-1].shape == (20, 2, 2) and torch.equal(model.calls[-1][0], out_and_back[:2])
    assert short.actions.shape == (3, 2) and short.elites.shape == (2, 3, 2)
    assert short.actions[2].abs().sum() == 0 and short.elites[:, 2].abs().sum() == 0
    assert short.energy > 0.01  # no sample near the warm start ends on the goal after 2 steps
    with pytest.raises(UserError, match="horizon"):
        make(**settings).plan(model.unroll, start, lambda p: energy(p, goal), horizon=4)


def test_agent_replans_with_warm_start_and_action_queue():
    env = PointEnv()
    obs, _ = env.reset(seed=3)
    agent = make_agent(execute_steps=2)
    agent.reset([GoalImage(env.goal_observation()["pixels"])])
    first = agent.act(obs)
    second = agent.act(obs)
    assert len(agent.plan_times) == 1  # two queued actions, one plan
    previous = agent.last_plan.actions
    np.testing.assert_allclose(np.stack([first, second]), previous[:2].numpy())
    agent.act(obs)
    assert len(agent.plan_times) == 2
    assert torch.equal(agent.world_model.calls[4][0], shift_plan(previous, 2))  # 1st call of re-plan 2


def test_agent_carries_the_last_plans_elites_shifted():
    env = PointEnv()
    obs, _ = env.reset(seed=3)
    agent = make_agent(execute_steps=2, keep_elites=3)
    agent.reset([GoalImage(env.goal_observation()["pixels"])])
    agent.act(obs)
    agent.act(obs)
    elites = agent.last_plan.elites
    assert elites.shape == (3, 3, 2)
    agent.act(obs)
    first_call = agent.world_model.calls[4]
    assert torch.equal(first_call[1:4], shift_plan(elites, 2))
    assert shift_plan(elites, 2)[:, 1:].abs().sum() == 0 and elites[:, :1].abs().sum() > 0


class FrameSkipModel(LinearModel):
    """The exact model of PointEnv when one model step takes k env actions ([B, H, k*2] actions)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def unroll(self, latent, actions):
        predicted = super().unroll(latent, actions.unflatten(-1, (self.k, 2)).sum(-2))
        self.calls[-1] = actions.clone()  # keep the planned [B, H, k*2] actions
        return predicted


def test_frame_skip_agent_executes_k_env_actions_per_planned_step():
    k = 3
    planner = CEM(
        2 * k, horizon=2, samples=64, top_k=8, iterations=4, init_std=STEP, low=-STEP, high=STEP, **CEM_PAPER
    )
    agent = MPCAgent(FrameSkipModel(k), planner, GoalEnergy(steps="sum"), execute_steps=k, frame_skip=k)
    env = PointEnv()
    obs, _ = env.reset(seed=1)
    agent.reset([GoalImage(env.goal_observation()["pixels"])])
    executed = np.stack([agent.act(obs) for _ in range(k)])
    assert len(agent.plan_times) == 1 and executed.shape == (k, 2)
    np.testing.assert_allclose(executed.reshape(-1), agent.last_plan.actions[0].numpy())
    report = evaluate(PointEnv, agent, episodes=5, seed=0, max_steps=24)
    assert report.success_rate == 1.0, report.summary()
    # one env action per re-plan: part of a step; the warm start drops exactly that action
    model = FrameSkipModel(k)
    agent = MPCAgent(model, planner, GoalEnergy(steps="sum"), execute_steps=1, frame_skip=k)
    agent.reset([GoalImage(env.goal_observation()["pixels"])])
    first = agent.act(obs)
    previous = agent.last_plan.actions.reshape(-1, 2)
    np.testing.assert_allclose(first, previous[0].numpy())
    agent.act(obs)
    assert len(agent.plan_times) == 2
    warm = model.calls[planner.iterations][0].reshape(-1, 2)  # candidate 0 of re-plan 2 = its mean
    torch.testing.assert_close(warm, torch.cat([previous[1:], torch.zeros(1, 2)]).clamp(-STEP, STEP))
    with pytest.raises(UserError, match="multiple of frame_skip"):
        MPCAgent(
            FrameSkipModel(k),
            CEM(5, horizon=2, samples=8, top_k=2, iterations=1, init_std=1.0, **CEM_PAPER),
            frame_skip=k,
        )


def test_hold_actions_plans_one_action_per_step_and_repeats_it():
    k = 3
    planner = CEM(
        2, horizon=2, samples=64, top_k=8, iterations=4, init_std=STEP, low=-STEP, high=STEP, **CEM_PAPER
    )
    model = FrameSkipModel(k)
    agent = MPCAgent(
        model, planner, GoalEnergy(steps="sum"), execute_steps=k, frame_skip=k, hold_actions=True
    )
    env = PointEnv()
    obs, _ = env.reset(seed=1)
    agent.reset([GoalImage(env.goal_observation()["pixels"])])
    executed = np.stack([agent.act(obs) for _ in range(k)])
    plan = agent.last_plan.actions  # [H, 2]: one action per model step
    assert plan.shape == (2, 2) and len(agent.plan_times) == 1
    np.testing.assert_allclose(executed, np.tile(plan[0].numpy(), (k, 1)))  # held for the k env actions
    fed = model.calls[-1]  # what the model saw: [C, H, k*2], each step the same action k times
    torch.testing.assert_close(fed, fed[..., :2].repeat(1, 1, k))
    agent.act(obs)  # re-plan 2 starts from the plan shifted by one whole model step
    torch.testing.assert_close(model.calls[planner.iterations][0][:, :2], shift_plan(plan, 1))
    assert evaluate(PointEnv, agent, episodes=5, seed=0, max_steps=24).success_rate == 1.0
    with pytest.raises(UserError, match="multiple of frame_skip"):
        MPCAgent(FrameSkipModel(k), planner, execute_steps=2, frame_skip=k, hold_actions=True)


def test_switch_actions_reach_the_model_and_the_env_as_one_bound_or_the_other():
    """An on/off dimension (a gripper) is searched as a continuous value but never used as one."""
    planner = CEM(2, horizon=2, samples=32, top_k=4, iterations=3, init_std=0.5, low=[-STEP, -1.0],
                  high=[STEP, 1.0], **CEM_PAPER)  # fmt: skip
    model = LinearModel()
    agent = MPCAgent(model, planner, GoalEnergy(steps="sum"), execute_steps=2, switch_actions=[1])
    env = PointEnv()
    obs, _ = env.reset(seed=2)
    agent.reset([GoalImage(env.goal_observation()["pixels"])])
    executed = np.stack([agent.act(obs) for _ in range(2)])
    seen = torch.cat(model.calls)
    assert set(seen[..., 1].unique().tolist()) == {-1.0, 1.0}  # every candidate: closed or open
    assert len(seen[..., 0].unique()) > 10  # the other dimension stays continuous
    assert set(executed[:, 1].tolist()) <= {-1.0, 1.0}
    raw = agent.last_plan.actions[:, 1]  # the plan keeps its continuous values: the next search starts there
    np.testing.assert_array_equal(executed[:, 1], np.where(raw.numpy() >= 0, 1.0, -1.0))
    with pytest.raises(UserError, match="env action dimensions in \\[0, 2\\)"):
        MPCAgent(model, planner, switch_actions=[2])
    unbounded = CEM(2, horizon=2, samples=8, top_k=2, iterations=1, init_std=0.5, **CEM_PAPER)
    with pytest.raises(UserError, match="finite action bounds"):
        MPCAgent(model, unbounded, switch_actions=[1])


def reproducible_part(report) -> dict:
    """A report without wall-clock times, which differ from run to run."""
    fields = dataclasses.asdict(report)
    for name in ("plan_time_mean", "plan_time_median"):
        fields.pop(name)
    for episode in fields["episodes"]:
        episode.pop("plan_times")
    return fields


def test_mpc_agent_solves_toy_env_and_beats_random():
    agent = make_agent()
    report = evaluate(PointEnv, agent, episodes=20, seed=0, max_steps=25)
    assert report.success_rate >= 0.95, report.summary()
    assert report.replans == 20 * 25 and report.plan_time_mean > 0
    again = evaluate(PointEnv, agent, episodes=20, seed=0, max_steps=25)
    assert reproducible_part(again) == reproducible_part(report)
    random_policy = lambda env: RandomPolicy(env.action_space)
    random = evaluate(PointEnv, random_policy, episodes=20, seed=0, max_steps=25)
    assert random.success_rate <= 0.2 and random.mean_final_distance > 5 * report.mean_final_distance
    assert random.plan_time_mean is None
    again = evaluate(PointEnv, random_policy, episodes=20, seed=0, max_steps=25)
    assert reproducible_part(again) == reproducible_part(random)


def test_true_simulator_baseline_solves_toy_env():
    planner = CEM(
        2, horizon=2, samples=16, top_k=4, iterations=3, init_std=STEP, low=-STEP, high=STEP, **CEM_PAPER
    )
    simulator = lambda env: simulator_agent(env, PointEnv(), planner)
    report = evaluate(PointEnv, simulator, episodes=3, seed=0, max_steps=20, privileged=True)
    assert report.success_rate == 1.0, report.summary()
    with pytest.raises(UserError, match="privileged reference"):  # it plans toward states, not images
        evaluate(PointEnv, simulator, episodes=1, seed=0, max_steps=2)


def embed_positions(pixels: torch.Tensor) -> torch.Tensor:
    """A stand-in frame encoder for PointEnv pictures (uint8 [B, 16, 16, 3]): the point's position as one
    token, [B, 1, 2]."""
    return torch.from_numpy(np.stack([position_in(p) for p in pixels.numpy()]))[:, None, :]


def test_true_dynamics_plans_toward_goal_images_with_the_encoders_energy():
    """The simulator with an encoder: goal images only (no goal state), the rendered frames embedded."""
    planner = CEM(
        2, horizon=2, samples=16, top_k=4, iterations=3, init_std=STEP, low=-STEP, high=STEP, **CEM_PAPER
    )
    agent = lambda env: simulator_agent(env, PointEnv(), planner, GoalEnergy(), embed=embed_positions)
    report = evaluate(PointEnv, agent, episodes=3, seed=0, max_steps=20)  # not privileged
    assert report.success_rate == 1.0, report.summary()

    env = PointEnv()
    env.reset(seed=3)
    env.pos = np.array([0.1, -0.2], np.float32)  # three moves from here stay inside the picture
    obs = env._obs(env.pos)
    actions = torch.from_numpy(np.random.default_rng(0).uniform(-STEP, STEP, (5, 3, 2)).astype(np.float32))
    frames = {}
    for every_step in (True, False):
        model = SimulatorModel(env, PointEnv(), embed_positions, every_step)
        start = model.encode({"pixels": torch.from_numpy(obs["pixels"])[None]})
        frames[every_step] = model.unroll(start, actions).visual  # [5, 3, 1, 2]
    path = torch.from_numpy(obs["state"]) + actions.cumsum(1)
    np.testing.assert_allclose(frames[True][:, :, 0], path, atol=1e-2)  # every step rendered and embedded
    assert frames[False].shape == frames[True].shape  # a last-step energy: the last frame stands for all
    torch.testing.assert_close(frames[False], frames[True][:, -1:].expand_as(frames[True]))


def test_evaluation_writes_gif_and_plot(tmp_path):
    report = evaluate(
        PointEnv, make_agent(), episodes=2, seed=5, max_steps=6, gif_dir=tmp_path, gif_episodes=1
    )
    frames = imageio.mimread(tmp_path / "episode_000.gif")
    assert len(frames) == report.episodes[0].steps + 1 == 7
    assert frames[0].shape[0] > 200  # upscaled from 16 px
    assert not (tmp_path / "episode_001.gif").exists()
    assert (tmp_path / "episodes.png").stat().st_size > 0


def test_episode_gif_shows_the_image_planned_toward_at_each_step(tmp_path):
    """Before the switch the right panel is the sub-goal image, after it the goal image."""
    frames = [np.zeros((16, 16, 3), np.uint8)] * 5
    subgoal, goal = np.full((16, 16, 3), 200, np.uint8), np.full((16, 16, 3), 50, np.uint8)
    save_episode_gif(
        tmp_path / "e.gif", frames, [subgoal, goal], [False] * 5, heading=[0, 0, 1, 1, 1], size=16
    )
    shown = [frame[-8:, -8:, :3].mean() for frame in imageio.mimread(tmp_path / "e.gif")]
    assert shown == pytest.approx([200, 200, 50, 50, 50], abs=2)
    for heading in ([0, 1], [0, 0, 1, 2, 1]):
        with pytest.raises(ValueError, match="one index into the 2 goal images per frame"):
            save_episode_gif(tmp_path / "f.gif", frames, [subgoal, goal], [False] * 5, heading)


def test_wilson_interval_known_values():
    assert wilson_interval(50, 50) == pytest.approx((0.9287, 1.0), abs=1e-4)
    assert wilson_interval(0, 50) == pytest.approx((0.0, 0.0713), abs=1e-4)
    assert wilson_interval(25, 50) == pytest.approx((0.3664, 0.6336), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_report_counts_success_at_the_end_and_at_any_step():
    def episode(seed: int, successes: list[bool]) -> EpisodeRecord:
        return EpisodeRecord(seed, successes[-1], 0.0, len(successes) - 1, [0.0] * len(successes), successes)

    report = summarise(
        [episode(0, [False, True, True]), episode(1, [False, True, False]), episode(2, [False, False, False])]
    )
    assert report.success_rate == pytest.approx(1 / 3) and report.reached_rate == pytest.approx(2 / 3)
    assert report.reached_ci95 == wilson_interval(2, 3)
    assert report.failed_seeds == [1, 2] and report.lost_seeds == [1]
    assert "reached at some step: 66.7%" in report.summary()


def test_world_model_agent_plans_frame_skip_steps_and_refuses_another_env():
    from types import SimpleNamespace

    planner_cfg = PlannerConfig()
    space = gym.spaces.Box(np.array([-1.0, -2.0], np.float32), np.array([1.0, 2.0], np.float32))
    model = SimpleNamespace(action_dim=6, device=torch.device("cpu"))
    agent = build_agent(model, planner_cfg, space)
    assert agent.frame_skip == 3 and agent.planner.action_dim == 6
    assert agent.planner.high.tolist() == [1.0, 2.0] * 3
    model.action_dim = 5
    with pytest.raises(UserError, match="trained on another env"):
        build_agent(model, planner_cfg, space)


def test_agent_on_the_goal_stands_still_with_the_zero_candidate():
    """The preset's settings reach the agent's planner. On the goal, with a warm start that steps out and
    back (the last plan's leftover) and a control cost, only the all-zero plan scores zero: with
    `zero_candidate` the agent stands still, without it, it follows the leftover out."""
    env = PointEnv()
    env.reset(seed=5)
    out_and_back = torch.tensor([[0.0, 0.0], [STEP, 0.0], [-STEP, 0.0]])  # executed: its first action

    def first_action(**settings) -> np.ndarray:
        model = LinearModel()
        model.action_dim, model.device = 2, torch.device("cpu")
        cfg = PlannerConfig(horizon=3, samples=32, iterations=2, init_std=0.01, action_cost=0.01, **settings)
        agent = build_agent(model, cfg, env.action_space)
        assert agent.planner.zero_candidate == settings.get("zero_candidate", False)
        assert agent.planner.keep_elites == settings.get("keep_elites", 0)
        agent.reset([GoalImage(env.goal_observation()["pixels"])])
        agent.last_plan = PlanResult(out_and_back, 0.0, 1, [0.0], torch.zeros(0, 3, 2))
        return agent.act(env.goal_observation())

    assert first_action()[0] > 0.5 * STEP
    assert np.abs(first_action(zero_candidate=True, keep_elites=2)).max() == 0.0


def test_agent_plans_no_further_than_the_episodes_end():
    """With plan_to_episode_end the horizon shrinks to the model steps left (a frame-skip-2 model step is
    2 env actions); without the episode's length the agent says how to give it; off, it plans 3 steps."""
    env = PointEnv()
    obs, _ = env.reset(seed=3)
    goal = [GoalImage(env.goal_observation()["pixels"])]

    def horizons(episode_end: bool, steps: int | None) -> list[int]:
        model = FrameSkipModel(2)
        model.action_dim, model.device = 4, torch.device("cpu")
        cfg = PlannerConfig(
            horizon=3, samples=16, iterations=1, execute_steps=2, plan_to_episode_end=episode_end
        )
        agent = build_agent(model, cfg, env.action_space)
        agent.reset(goal, steps=steps)
        for _ in range(steps or 6):
            agent.act(obs)
        return [call.shape[1] for call in model.calls]

    assert horizons(True, 9) == [3, 3, 3, 2, 1]  # 9, 7, 5, 3, 1 env steps left at the re-plans
    assert horizons(False, 9) == [3] * 5
    with pytest.raises(UserError, match="steps="):
        horizons(True, None)


def test_planner_bounds_are_the_env_bounds_intersected_with_the_presets():
    space = gym.spaces.Box(np.array([-1.0, -2.0], np.float32), np.array([1.0, 2.0], np.float32))
    planner = PlannerConfig(action_low=[-0.5, -3.0], action_high=[0.5, -1.0]).build(space, frame_skip=2)
    assert planner.low.tolist() == [-0.5, -2.0] * 2 and planner.high.tolist() == [0.5, -1.0] * 2
    planner = PlannerConfig(action_low=None, action_high=0.25).build(space)
    assert planner.low.tolist() == [-1.0, -2.0] and planner.high.tolist() == [0.25, 0.25]
    for low, high in (([0.0, 0.0, 0.0], None), (0.5, 0.4), (None, -3.0)):
        with pytest.raises(UserError, match="action_low"):
            PlannerConfig(action_low=low, action_high=high).build(space)


class ViaPointEnv(PointEnv):
    """PointEnv whose episodes pass a way-point: the corner (0.8, 0.8), then the goal."""

    VIA = np.array([0.8, 0.8], np.float32)

    def subgoal_observations(self):
        return [self._obs(self.VIA), self.goal_observation()]


def subgoal_images(env: PointEnv) -> list[GoalImage]:
    return [GoalImage(o["pixels"]) for o in env.subgoal_observations()]


def test_agent_switches_sub_goals_on_its_fixed_schedule():
    env = ViaPointEnv()
    obs, _ = env.reset(seed=0)
    planner = CEM(2, horizon=2, samples=8, top_k=2, iterations=1, init_std=STEP, **CEM_PAPER)
    agent = MPCAgent(LinearModel(), planner, GoalEnergy(), subgoal_steps=[3])
    agent.reset(subgoal_images(env))
    goals = []
    for _ in range(5):
        agent.act(obs)
        goals.append(agent.goal.visual.flatten().numpy())
    np.testing.assert_allclose(goals[:3], [ViaPointEnv.VIA] * 3, atol=1e-3)  # read from the image
    np.testing.assert_allclose(goals[3:], [env.goal] * 2, atol=1e-3)
    assert len(agent.plan_times) == 5  # the re-plans before the switch are kept
    with pytest.raises(UserError, match="plans toward 2 goal images"):
        agent.reset(subgoal_images(env)[1:])
    with pytest.raises(UserError, match="positive"):
        MPCAgent(LinearModel(), planner, subgoal_steps=[0])


def test_agent_with_subgoals_passes_the_way_point_and_ends_at_the_goal():
    env = ViaPointEnv()
    policy = make_agent(subgoal_steps=[20])
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        policy.reset(subgoal_images(env))
        path = []
        for _ in range(40):
            obs, _, _, _, info = env.step(policy.act(obs))
            path.append(obs["state"])
        assert np.linalg.norm(np.array(path[:20]) - ViaPointEnv.VIA, axis=1).min() < 0.05
        assert info["success"]
    report = evaluate(ViaPointEnv, policy, episodes=3, seed=0, max_steps=40, subgoal_steps=[20])
    assert report.success_rate == 1.0 and report.replans == 3 * 40, report.summary()


def test_agent_moves_on_when_the_sub_goal_energy_falls_below_its_threshold():
    """With subgoal_energy the agent leaves the way-point once it is there, long before the schedule's 30
    steps; without it, it waits there; the GIF of the evaluation follows the agent's switch."""
    env = ViaPointEnv()
    waits, moves_on = make_agent(subgoal_steps=[30]), make_agent(subgoal_steps=[30], subgoal_energy=0.02)
    for agent in (waits, moves_on):
        obs, _ = env.reset(seed=0)
        agent.reset(subgoal_images(env))
        heading = []
        for _ in range(30):
            obs, *_ = env.step(agent.act(obs))
            heading.append(agent.goal_index)
        agent.heading = heading
    assert waits.heading == [0] * 30 and min(waits.energies) < 0.02
    switch = moves_on.heading.index(1)
    assert 5 < switch < 25 and moves_on.heading[switch:] == [1] * (30 - switch)
    assert moves_on.energies[switch - 1] >= 0.02 and env.get_sim_state() == pytest.approx(env.goal, abs=0.05)
    report = evaluate(ViaPointEnv, moves_on, episodes=3, seed=0, max_steps=40, subgoal_steps=[30])
    assert report.success_rate == 1.0, report.summary()


class RelativeGoalModel(LinearModel):
    """A LinearModel that reads the goal relative to the current observation (as a pair state readout
    does): goal = current state + (goal image position - current image position); records every call."""

    goal_state_follows_current = True

    def __init__(self) -> None:
        super().__init__()
        self.goal_calls: list = []

    def encode_goal(self, goal, current=None):
        self.goal_calls.append(current)
        change = position_in(goal.image) - position_in(current["pixels"][0].numpy())
        return Latent((current["state"][0] + torch.as_tensor(change))[None, None, :].float())


def test_agent_re_reads_a_relative_goal_state_at_every_re_plan():
    env = ViaPointEnv()
    model = RelativeGoalModel()
    planner = CEM(2, horizon=2, samples=8, top_k=2, iterations=1, init_std=STEP, **CEM_PAPER)
    agent = MPCAgent(model, planner, GoalEnergy(), execute_steps=2)
    obs, _ = env.reset(seed=0)
    agent.reset([GoalImage(env.goal_observation()["pixels"])])
    assert model.goal_calls == []  # nothing to read against before the first observation
    observed = []
    for _ in range(6):
        observed.append(obs["state"])
        obs, *_ = env.step(agent.act(obs))
    assert len(model.goal_calls) == 3  # one per re-plan (2 actions each), against that re-plan's observation
    np.testing.assert_allclose([c["state"][0].numpy() for c in model.goal_calls], observed[::2])


class OffsetReadModel(LinearModel):
    """Reads the goal state as the current state plus the next scripted offset (a pair readout whose
    reads differ from re-plan to re-plan); its latents carry the state as proprioception too."""

    goal_state_follows_current = True

    def __init__(self, offsets: list[tuple[float, float]]) -> None:
        super().__init__()
        self.offsets = [torch.tensor(o) for o in offsets]

    def encode(self, obs):
        state = obs["state"].float()
        return Latent(state[:, None, :], state)

    def encode_goal(self, goal, current=None):
        read = current["state"][0].float() + self.offsets.pop(0)
        return Latent(read[None, None, :], read[None])

    def unroll(self, latent, actions):
        predicted = super().unroll(latent, actions).visual
        return Latent(predicted, predicted[:, :, 0, :])


@pytest.mark.parametrize(
    ("scale", "state_weights", "distances"),
    [(None, None, None), (0.1, None, (0.5, 0.1)), (0.1, [1.0, 0.0], (0.3, 0.0))],
)
def test_goal_reads_are_pooled_by_how_near_they_were_read(scale, state_weights, distances):
    """With `goal_read_scale` the agent plans toward the mean of its reads of one goal, each weighted by
    1 / (d^2 + scale^2), d the read's distance from the state it was read at in the values the energy
    compares (state_weights); without, the latest read."""
    env = ViaPointEnv()
    offsets = [(0.3, 0.4), (0.0, 0.1)]  # a far read (0.5 away; 0.3 in x), then a near one (0.1; 0 in x)
    model = OffsetReadModel(offsets)
    planner = CEM(2, horizon=2, samples=8, top_k=2, iterations=1, init_std=STEP, **CEM_PAPER)
    energy = GoalEnergy(proprio_weight=1.0, state_weights=state_weights)
    agent = MPCAgent(model, planner, energy, execute_steps=2, goal_read_scale=scale)
    obs, _ = env.reset(seed=0)
    agent.reset([GoalImage(env.goal_observation()["pixels"])])
    reads = []
    for step in range(4):
        if step % 2 == 0:  # a re-plan reads the goal against this observation
            reads.append(torch.as_tensor(obs["state"]).float() + torch.tensor(offsets[step // 2]))
        obs, *_ = env.step(agent.act(obs))
    if scale is None:
        expected = reads[1]
    else:
        weights = [1 / (distance**2 + scale**2) for distance in distances]
        expected = (weights[0] * reads[0] + weights[1] * reads[1]) / sum(weights)
    torch.testing.assert_close(agent.goal.proprio[0], expected)
    with pytest.raises(UserError, match="goal_read_scale must be > 0"):
        PlannerConfig(goal_read_scale=0.0)


class GoalRecorder:
    """A policy that keeps the goals it was reset with and stands still."""

    def __init__(self) -> None:
        self.goals: list = []

    def reset(self, goals, steps=None) -> None:
        self.goals.append(list(goals))
        self.steps = steps

    def act(self, obs):
        return np.zeros(2, np.float32)


def test_evaluation_hands_the_planner_goal_images_only():
    recorder = GoalRecorder()
    evaluate(ViaPointEnv, recorder, episodes=2, seed=0, max_steps=2)
    evaluate(ViaPointEnv, recorder, episodes=1, seed=0, max_steps=2, subgoal_steps=[1])
    assert [len(goals) for goals in recorder.goals] == [1, 1, 2] and recorder.steps == 2
    assert all(
        type(goal) is GoalImage and not hasattr(goal, "state") for goals in recorder.goals for goal in goals
    )
    evaluate(ViaPointEnv, recorder, episodes=1, seed=0, max_steps=2, privileged=True)  # reference rows only
    assert isinstance(recorder.goals[-1][0], PrivilegedGoal)
    env = ViaPointEnv()
    env.reset(seed=0)
    np.testing.assert_array_equal(recorder.goals[-1][0].state, env.goal)
    with pytest.raises(UserError, match="uint8"):
        GoalImage(np.zeros((4, 4, 3), np.float32))
