"""Would an energy that sees the block make Push correct a drifting block? Privileged upper bounds, then
the block read from the pictures.

Push plans toward sub-goal pictures on a fixed schedule and fails when the pushed block drifts off the
line the pictures were drawn on (docs/results.md). The obvious remedy is block feedback in the energy: read
the block's position from each picture, predict how the candidate actions move it, and score its distance
to where the sub-goal shows it. This asks whether that remedy works before anyone builds it into the world
model. By default it gives the planner the simulator's state of the hand AND the block (privileged: the
block's true position and yaw now and in every sub-goal), predicts their change with a learned state head
(`ProprioHead` on [7-D proprio, block x, y, cos 4 yaw, sin 4 yaw], fitted with `fit_proprio_head` on
transitions of the preset's collection mix; with `--block-velocity` also on how far the block moved in the
last env action), and plans with the preset's planner and schedule, the energy weighing the hand's and the
block's distance to each sub-goal (no image term). The block weight 0 row is the same planner without block
feedback. `--dynamics simulator` replaces the learned head with MuJoCo itself: every candidate is played
out in a copy of the episode's physics from its present state, the bound with a perfect model of the
block. `--block-readout N` takes the simulator out of the planner's inputs: a `StateReadout` fitted on the
frames of N recorded episodes (those whose block is on the table) reads the block from the camera image
and every sub-goal's state from its picture; only the robot's own proprio is the simulator's (`--read now`
or `subgoals` reads one of the two, to tell which costs). `--read-noise MM` asks how precise a readout
must be: the simulator's block position blurred with Gaussian noise of that spread. `--block-locator N`
reads the block's position in the camera image with an `ObjectLocator` instead (spatial-softmax keypoints
read with the robot's proprio, fitted on N episodes); the readout still reads its yaw and the sub-goals. Rows that read the
block also print how far off its position and its last move were in the loop.

    python benchmarks/push_block_energy.py --episodes 50 --dynamics simulator --block-weights 0 10
    python benchmarks/push_block_energy.py --episodes 50 --collect 3000 --block-velocity --block-weights 0 1 3
    python benchmarks/push_block_energy.py --episodes 50 --collect 3000 --block-velocity --block-readout 600
    python benchmarks/push_block_energy.py --episodes 50 --collect 3000 --block-velocity --read-noise 3
    python benchmarks/push_block_energy.py --episodes 50 --collect 3000 --block-velocity --block-readout 3000 \
        --block-locator 400

Recorded states and the fitted readout and locator are kept under runs/. Preset overrides go before `--block-weights`
(or after `--`): `... --episodes 50 planner.horizon=5 --block-weights 0 1`.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import torch

os.environ.setdefault("MUJOCO_GL", "egl")

from worldjepa.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize  # noqa: E402
from worldjepa.eval.closed_loop import wilson_interval  # noqa: E402
from worldjepa.methods.object_locator_fit import ObjectLocatorFitConfig, fit_object_locator  # noqa: E402
from worldjepa.methods.proprio_fit import ProprioFitConfig, episode_transitions, fit_proprio_head  # noqa: E402
from worldjepa.methods.state_readout_fit import StateReadoutFitConfig, fit_state_readout  # noqa: E402
from worldjepa.nn.proprio_head import ProprioHead, unroll_states  # noqa: E402
from worldjepa.planning.agent import build_agent  # noqa: E402
from worldjepa.planning.goal import PrivilegedGoal  # noqa: E402
from worldjepa.planning.world_model import Latent  # noqa: E402
from worldjepa.presets import SPLIT_SEEDS, WorldModelPreset, load_config  # noqa: E402
from worldjepa.stages.collect import episode_plan, run_episode  # noqa: E402

#: Camera images [B, 3, H, W] in [0, 1] -> the input of the fitted readout and locator.
TO_INPUT = partial(normalize, mean=IMAGENET_MEAN, std=IMAGENET_STD)

#: The hand's values of the 7-D proprio state that the energy weighs (x, y, z; not its angles or fingers).
HAND = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def full_state(arm, data: mujoco.MjData) -> np.ndarray:
    """The 7-D proprio state as `ArmEnv` observes it, then the block's pose (`ArmEnv.block_pose`: x, y and
    cos / sin of 4 yaw), in `data`: the env's physics or a copy of it."""
    return np.concatenate([arm.proprio_state(data), arm.block_pose(data)])


def with_block_velocity(states: np.ndarray) -> np.ndarray:
    """[T, 11] `full_state`s of one episode -> [T, 13]: each followed by how far the block moved (x, y) in
    the env action before it (none before the first)."""
    moved = np.diff(states[:, 7:9], axis=0, prepend=states[:1, 7:9])
    return np.concatenate([states, moved], axis=1)


class WithBlockState(gym.Wrapper):
    """Observations whose `state` is the proprio state followed by the block's (`full_state`) and, with
    `velocity`, how far the block moved in the last env action (`with_block_velocity`): where a pushed
    block goes next depends on how it is moving, which its position does not say. With a `readout`
    (pixels [H, W, 3] -> the 11-D state they show) the block's values are read from the camera image
    (`read_now`) and every sub-goal's from its picture, hand included (`read_subgoals`): with both, nothing
    but the robot's own proprio comes from the simulator. `read_noise` (metres) instead blurs the
    simulator's block position in each observation with Gaussian noise: a stand-in for a readout of that
    precision. A `locator` ((pixels, the 7-D proprio) -> the block's x, y) reads the block's position in
    the camera image in place of the readout (which still reads its yaw). `errors` collects, per observation with the block on the table, how far the block's
    position and its last move are off the simulator's (x and y each, metres) and whether it moved."""

    def __init__(
        self,
        env: gym.Env,
        velocity: bool,
        readout: Callable[[np.ndarray], np.ndarray] | None = None,
        read_now: bool = True,
        read_subgoals: bool = True,
        read_noise: float = 0.0,
        locator: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    ) -> None:
        super().__init__(env)
        self.velocity, self.readout, self.read_noise, self.locator = velocity, readout, read_noise, locator
        self.read_now, self.read_subgoals = (
            read_now and readout is not None,
            read_subgoals and readout is not None,
        )
        self.noise = np.random.default_rng(0)
        self.last = self.last_true = None
        self.errors: list[np.ndarray] = []

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        self.last = self.last_true = None
        return self.observation(observation), info

    def step(self, action):
        observation, *rest = self.env.step(action)
        return self.observation(observation), *rest

    def observation(self, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        true = full_state(self.unwrapped, self.unwrapped.data)
        state = true.copy()
        if self.read_now:
            state[7:] = self.readout(observation["pixels"])[7:]
            if self.locator is not None:
                state[7:9] = self.locator(observation["pixels"], true[:7])
        state[7:9] += self.noise.normal(0.0, self.read_noise, 2) if self.read_noise else 0.0
        if self.last_true is not None and self.unwrapped.block_on_table(true[7:9]):
            moved, moved_true = state[7:9] - self.last[7:9], true[7:9] - self.last_true[7:9]
            off = np.abs(np.concatenate([state[7:9] - true[7:9], moved - moved_true]))
            self.errors.append(np.append(off, np.linalg.norm(moved_true) > 1e-3))
        last = state[None] if self.last is None else self.last[None]
        self.last, self.last_true = state, true
        if self.velocity:
            state = with_block_velocity(np.concatenate([last, state[None]]))[-1]
        return {**observation, "state": state}

    def subgoal_states(self) -> list[np.ndarray]:
        """The state (proprio and block, at rest) of every sub-goal the env renders, the goal last: the
        simulator's, or with `read_subgoals` the one read from the sub-goal's picture."""
        arm = self.unwrapped
        if self.read_subgoals:
            states = [self.readout(observation["pixels"]) for observation in arm.subgoal_observations()]
        else:
            states = []
            for pose in arm._subgoal_poses():
                snapshot = arm.get_sim_state()
                pose()
                mujoco.mj_forward(arm.model, arm.data)
                states.append(full_state(arm, arm.data))
                arm.set_sim_state(snapshot)
        return [np.concatenate([s, np.zeros(2, np.float32)]) if self.velocity else s for s in states]


class StateWorldModel:
    """A world model whose latent is the simulator state, rolled forward by a learned state head."""

    device = torch.device("cpu")

    def __init__(self, head: ProprioHead) -> None:
        self.head, self.action_dim = head, head.action_dim

    def encode(self, obs: dict[str, torch.Tensor]) -> Latent:
        return Latent(obs["state"].new_zeros(len(obs["state"]), 1, 1), obs["state"].float())

    def encode_goal(self, goal: PrivilegedGoal) -> Latent:
        return Latent(torch.zeros(1, 1, 1), torch.as_tensor(goal.state)[None])

    def unroll(self, latent: Latent, actions: torch.Tensor, frames: bool = True) -> Latent:
        states = unroll_states(self.head, latent.proprio.expand(len(actions), -1), actions)[:, 1:]
        return Latent(states.new_zeros(*states.shape[:2], 1, 1), states)


class SimulatorWorldModel(StateWorldModel):
    """A world model whose latent is the simulator state and whose dynamics are the simulator's own: each
    candidate is played out, env action by env action as `ArmEnv.step` applies them, in a copy of the
    physics taken when the present observation is encoded."""

    def __init__(self, arm, frame_skip: int) -> None:
        self.arm, self.action_dim = arm, 4 * frame_skip
        self.spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.start = np.empty(mujoco.mj_stateSize(arm.model, self.spec))
        self.copy = mujoco.MjData(arm.model)

    def encode(self, obs: dict[str, torch.Tensor]) -> Latent:
        mujoco.mj_getState(self.arm.model, self.arm.data, self.start, self.spec)
        return super().encode(obs)

    def unroll(self, latent: Latent, actions: torch.Tensor, frames: bool = True) -> Latent:
        model, data = self.arm.model, self.copy
        moves = actions.unflatten(-1, (-1, 4)).double().numpy()  # [N, H, frame skip, 4]
        states = np.empty((*moves.shape[:2], latent.proprio.shape[-1]), np.float32)
        for n, plan in enumerate(moves):
            mujoco.mj_setState(model, data, self.start, self.spec)
            data.ctrl[:] = self.arm.data.ctrl
            mujoco.mj_forward(model, data)
            for t, step in enumerate(plan):
                for action in step:
                    self.arm.apply_action(action, data)
                states[n, t] = full_state(self.arm, data)
        states = torch.from_numpy(states)
        return Latent(states.new_zeros(*states.shape[:2], 1, 1), states)


def recorded(cfg: WorldModelPreset, env: gym.Env, episodes: range) -> list[dict]:
    """Episodes `episodes` of the preset's collection mix, their states `full_state`s."""
    return [
        run_episode(
            env, *episode_plan(cfg.collect.seed, e, "mix", cfg.collect.expert_fraction), cfg.collect.noise
        )
        for e in episodes
    ]


def fitted_readout(
    cfg: WorldModelPreset, episodes: int, fit: StateReadoutFitConfig, cache: Path
) -> Callable[[np.ndarray], np.ndarray]:
    """pixels [H, W, 3] -> the 11-D state (`full_state`) they show: a `StateReadout` fitted with
    `fit_state_readout` on the frames of `episodes` episodes of the preset's collection mix whose block is
    on the table (kept in `cache`), a share `fit.validation` of the episodes held out to measure it."""
    readout = fit.build(11, cfg.env.image_size)
    if not load_fitted(readout, cache):
        frames, states, numbers = frames_on_table(cfg, episodes)
        tic = time.perf_counter()
        errors = fit_state_readout(readout, frames, states, numbers, TO_INPUT, fit, "cpu", False)
        error = errors["val_mean_abs_error"]
        print(
            f"state readout fitted on {len(frames)} frames in {time.perf_counter() - tic:.0f} s; on held-out "
            f"episodes the hand is read {1000 * np.mean(error[:3]):.1f} mm off per axis, the block "
            f"{1000 * np.mean(error[7:9]):.1f} mm",
            flush=True,
        )
        save_fitted(readout, cache)

    def read(pixels: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return readout(as_input(pixels))[0].numpy()

    return read


def fitted_locator(
    cfg: WorldModelPreset, episodes: int, fit: ObjectLocatorFitConfig, cache: Path
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(pixels [H, W, 3], the 7-D proprio) -> the block's x, y: an `ObjectLocator` fitted with
    `fit_object_locator` on the frames of `episodes` episodes of the preset's collection mix whose block is
    on the table (kept in `cache`), a share `fit.validation` of the episodes held out to measure it."""
    locator = fit.build(2, 7)
    if not load_fitted(locator, cache):
        frames, states, numbers = frames_on_table(cfg, episodes)
        tic = time.perf_counter()
        errors = fit_object_locator(
            locator, frames, states[:, :7], states[:, 7:9], numbers, TO_INPUT, fit, "cpu", False
        )
        error, p90 = errors["val_mean_abs_error"], errors["val_p90_abs_error"]
        print(
            f"block locator fitted on {len(frames)} frames in {time.perf_counter() - tic:.0f} s; on held-out "
            f"episodes it reads the block {1000 * np.mean(error):.1f} mm off per axis (90th percentile "
            f"{1000 * np.mean(p90):.1f} mm)",
            flush=True,
        )
        save_fitted(locator, cache)

    def locate(pixels: np.ndarray, proprio: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return locator(as_input(pixels), torch.from_numpy(proprio[None]))[0].numpy()

    return locate


def frames_on_table(cfg: WorldModelPreset, episodes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 frames [M, H, W, 3], `full_state`s [M, 11] and episode numbers [M] of `episodes` episodes of the
    preset's collection mix, the frames whose block is on the table only: those whose block random motions
    knocked off teach nothing Push needs, and their metre-scale errors would dominate a squared loss."""
    env = WithBlockState(cfg.env.make(), velocity=False)
    data = recorded(cfg, env, range(episodes))
    frames = torch.from_numpy(np.concatenate([r["frames"] for r in data]))
    states = torch.from_numpy(np.concatenate([r["states"] for r in data]))
    numbers = torch.cat([torch.full((len(r["states"]),), e) for e, r in enumerate(data)])
    kept = torch.from_numpy(env.unwrapped.block_on_table(states[:, 7:9].numpy()))
    print(f"{len(frames)} frames recorded, the block on the table in {kept.float().mean():.0%}", flush=True)
    return frames[kept], states[kept], numbers[kept]


def as_input(pixels: np.ndarray) -> torch.Tensor:
    """One camera image [H, W, 3] uint8 -> the fitted networks' input [1, 3, H, W]."""
    return TO_INPUT(torch.from_numpy(pixels).permute(2, 0, 1)[None].float().div_(255.0))


def load_fitted(network: torch.nn.Module, cache: Path) -> bool:
    """Load a network fitted before from `cache` (its normalisation and weights); False if there is none."""
    if not cache.exists():
        return False
    saved = torch.load(cache, weights_only=True)
    network.set_normalization(saved["normalization"])
    network.load_state_dict(saved["weights"])
    network.eval().requires_grad_(False)
    return True


def save_fitted(network: torch.nn.Module, cache: Path) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"normalization": network.config()["normalization"], "weights": network.state_dict()}, cache)


def fitted_head(
    cfg: WorldModelPreset, env: gym.Env, episodes: int, fit: ProprioFitConfig, cache: Path
) -> ProprioHead:
    """The state head fitted on 90 % of `episodes` episodes of the preset's collection mix (recorded once,
    kept in `cache`, the fitted head beside it), one env action per move, applied frame-skip times per
    model step; the other 10 % measure how far off it puts the block where the block moves."""
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        data = recorded(cfg, env, range(episodes))
        np.savez(
            cache,
            states=np.stack([r["states"][:, :11] for r in data]),
            actions=np.stack([r["actions"] for r in data]),
        )
    data = np.load(cache)
    velocity = env.get_wrapper_attr("velocity")
    parts = [
        episode_transitions(
            torch.from_numpy(with_block_velocity(s) if velocity else s), torch.from_numpy(a), 1
        )
        for s, a in zip(data["states"], data["actions"], strict=True)
    ]
    split = len(parts) - max(1, len(parts) // 10)
    states, actions, after = (torch.cat(part) for part in zip(*parts[:split], strict=True))
    skip = cfg.world_model.frame_skip
    head = ProprioHead(
        states.shape[1], actions.shape[1] * skip, fit.hidden_dim, fit.hidden_layers, moves=skip
    )
    fitted = cache.with_name(f"{cache.stem}_head_{fit.steps}_{fit.hidden_dim}{'_velocity' * velocity}.pt")
    if not load_fitted(head, fitted):
        fit_proprio_head(head, states, actions, after, fit, "cpu", False)
        save_fitted(head, fitted)
    states, actions, after = (torch.cat(part) for part in zip(*parts[split:], strict=True))
    with torch.no_grad():
        error = (head.move(states, actions) - after)[:, 7:9].norm(dim=-1)
    moved = (after - states)[:, 7:9].norm(dim=-1)
    moving = moved > 1e-3
    print(
        f"state head fitted on {split} episodes ({fit.steps} steps); on {len(parts) - split} held-out "
        f"episodes the block moves in {moving.float().mean():.1%} of moves and is put "
        f"{1000 * error[moving].mean():.1f} mm off where it does (a model leaving it still: "
        f"{1000 * moved[moving].mean():.1f} mm), {1000 * error[~moving].mean():.2f} mm where it does not",
        flush=True,
    )
    return head


def estimate_errors(errors: np.ndarray) -> str:
    """`WithBlockState.errors` [N, 5] -> how far off the block's position and its last move were, in words."""
    moved = errors[:, 4] > 0
    return (
        f"the block {1000 * errors[:, :2].mean():.1f} mm off per axis, its last move "
        f"{1000 * errors[moved, 2:4].mean():.1f} mm where it moved ({moved.mean():.0%} of steps), "
        f"{1000 * errors[~moved, 2:4].mean():.1f} mm where it did not"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=list(SPLIT_SEEDS), default="validation")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--block-weights", type=float, nargs="+", default=[0.0, 1.0, 3.0])
    parser.add_argument("--collect", type=int, default=600, help="episodes to fit the state head on")
    parser.add_argument("--fit-steps", type=int, default=16000, help="the state head's training steps")
    parser.add_argument("--hidden-dim", type=int, default=256, help="the state head's width")
    parser.add_argument(
        "--dynamics", choices=["learned", "simulator"], default="learned", help="what predicts the states"
    )
    parser.add_argument(
        "--block-velocity", action="store_true", help="the learned head also reads how the block is moving"
    )
    parser.add_argument(
        "--block-readout",
        type=int,
        metavar="EPISODES",
        help="read the block, and every sub-goal's state, from the pictures with a readout fitted on this "
        "many episodes' frames",
    )
    parser.add_argument("--readout-steps", type=int, default=4000, help="the readout's training steps")
    parser.add_argument("--readout-width", type=int, default=16, help="the readout's first layer's channels")
    parser.add_argument(
        "--read",
        choices=["both", "now", "subgoals"],
        default="both",
        help="with --block-readout, what is read from pictures: the block now and the sub-goals' states "
        "(both), or one of them (the other from the simulator): which read costs the planner",
    )
    parser.add_argument(
        "--read-noise",
        type=float,
        default=0.0,
        metavar="MM",
        help="blur the simulator's block position in each observation with Gaussian noise of this spread "
        "(mm per axis): how precise a readout must be",
    )
    parser.add_argument(
        "--block-locator",
        type=int,
        metavar="EPISODES",
        help="with --block-readout, read the block's position in the camera image with an object locator "
        "(keypoints and the robot's proprio) fitted on this many episodes' frames",
    )
    parser.add_argument("overrides", nargs="*", help="preset overrides, e.g. planner.horizon=5")
    args = parser.parse_args()
    if args.block_velocity and args.dynamics == "simulator":
        parser.error("--block-velocity is for the learned head: the simulator keeps its own velocities")
    if args.read != "both" and not args.block_readout:
        parser.error("--read chooses what the readout reads: it needs --block-readout")
    if args.read_noise and args.block_readout:
        parser.error("--read-noise stands in for a readout: give it without --block-readout")
    if args.block_locator and (not args.block_readout or args.read == "subgoals"):
        parser.error(
            "--block-locator reads the block now beside the readout: it needs --block-readout, --read both or now"
        )
    cfg = load_config("wm_arm_push", args.overrides, WorldModelPreset)
    readout = locator = None
    size_tag = "" if cfg.env.image_size == 64 else f"_{cfg.env.image_size}px"  # in the cached fits' names
    if args.block_readout:
        tag = size_tag + ("" if args.readout_width == 16 else f"_w{args.readout_width}")
        saved = Path(f"runs/push_block_readout_{args.block_readout}_{args.readout_steps}_table{tag}.pt")
        fit = StateReadoutFitConfig(steps=args.readout_steps, width=args.readout_width)
        readout = fitted_readout(cfg, args.block_readout, fit, saved)
    if args.block_locator:
        saved = Path(f"runs/push_block_locator_{args.block_locator}{size_tag}.pt")
        locator = fitted_locator(cfg, args.block_locator, ObjectLocatorFitConfig(), saved)
    torch.set_num_threads(1)
    env = WithBlockState(
        cfg.env.make(),
        args.block_velocity,
        readout,
        read_now=args.read != "subgoals",
        read_subgoals=args.read != "now",
        read_noise=args.read_noise / 1000,
        locator=locator,
    )
    if args.dynamics == "learned":
        fit = ProprioFitConfig(steps=args.fit_steps, hidden_dim=args.hidden_dim, validation=0)
        saved = Path(f"runs/push_block_states_{args.collect}.npz")
        world_model = StateWorldModel(fitted_head(cfg, env, args.collect, fit, saved))
    else:
        world_model = SimulatorWorldModel(env.unwrapped, cfg.world_model.frame_skip)
    first = SPLIT_SEEDS[args.split]
    velocity = [0.0, 0.0] if args.block_velocity else []
    for weight in args.block_weights:
        cfg.planner.energy.state_weights = [*HAND, weight, weight, 0.0, 0.0, *velocity]
        agent = build_agent(world_model, cfg.planner, env.action_space)
        tic, results = time.perf_counter(), []
        for seed in range(first, first + args.episodes):
            observation, _ = env.reset(seed=seed)
            goals = [PrivilegedGoal(observation["pixels"], state) for state in env.subgoal_states()]
            agent.reset(goals, steps=env.spec.max_episode_steps)
            for _ in range(env.spec.max_episode_steps):
                observation, _, _, _, info = env.step(agent.act(observation))
            results.append((info["success"], info["distance"]))
        wins = sum(success for success, _ in results)
        read = args.read != "subgoals" and (args.block_readout or args.read_noise)
        estimate = f"; {estimate_errors(np.array(env.errors))}" if read and env.errors else ""
        env.errors = []
        low, high = wilson_interval(wins, len(results))
        print(
            f"block weight {weight:g}: {wins}/{len(results)} "
            f"({wins / len(results):.0%}; {low:.0%}-{high:.0%}), "
            f"final distance {100 * np.mean([d for _, d in results]):.1f} cm, {args.split} seeds, "
            f"{time.perf_counter() - tic:.0f} s{estimate}",
            flush=True,
        )


if __name__ == "__main__":
    main()
