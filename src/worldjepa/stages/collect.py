"""Stage 0, `worldjepa collect`: trajectory datasets from an env with exploration and noisy scripted
policies, in parallel.

Each episode is self-contained: its reset seed, its policy (random or noisy expert) and its action
noise all come from `(seed, episode number)`, so a collection is identical whatever the number of
workers. Workers step their own env and send whole episodes back; the parent is the only writer,
in episode order. Appending to an existing folder continues the episode numbering, so a second run
with the same seed adds new episodes instead of repeating old ones.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
from tqdm import tqdm

from worldjepa.data.trajectories import TrajectoryDataset, TrajectoryWriter
from worldjepa.envs.base import GoalEnv
from worldjepa.envs.registry import EnvConfig, make_env
from worldjepa.errors import UserError
from worldjepa.presets import CollectConfig

POLICIES = ("random", "expert", "mix")
#: Random exploration holds each uniform action for a geometric number of steps with this mean:
#: it travels farther than per-step white noise, so the data covers more of the world.
RANDOM_HOLD_STEPS = 4.0


@dataclass(frozen=True)
class CollectResult:
    out_dir: Path
    episodes: int
    frames: int
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def episode_plan(seed: int, episode: int, policy: str, expert_fraction: float) -> tuple[int, str, int]:
    """(reset seed, policy name, policy rng seed) of one episode, from the collection seed alone."""
    rng = np.random.default_rng([seed, episode])
    reset_seed = int(rng.integers(2**31))
    if policy == "mix":
        policy = "expert" if rng.random() < expert_fraction else "random"
    return reset_seed, policy, int(rng.integers(2**31))


def run_episode(env: gym.Env, reset_seed: int, policy: str, policy_seed: int, noise: float) -> dict[str, Any]:
    """Roll one episode until the env ends it; `noise` is a fraction of the action half-range. The
    simulator's object states (`GoalEnv.object_state`) are recorded beside the frames when the env has
    objects."""
    rng = np.random.default_rng(policy_seed)
    space = env.action_space
    noise_scale = noise * float(np.mean((space.high - space.low) / 2))
    obs, _ = env.reset(seed=reset_seed)
    scene = env.unwrapped
    record_objects = getattr(scene, "object_dim", 0) > 0
    frames, states, actions = [obs["pixels"]], [obs["state"]], []
    objects = [scene.object_state()] if record_objects else []
    held = rng.uniform(space.low, space.high)
    while True:
        if policy == "expert":
            action = scene.expert_action(rng, noise_scale)
        else:
            if rng.random() < 1.0 / RANDOM_HOLD_STEPS:
                held = rng.uniform(space.low, space.high)
            action = held
        obs, _, terminated, truncated, _ = env.step(action)
        actions.append(np.asarray(action, np.float32))
        frames.append(obs["pixels"])
        states.append(obs["state"])
        if record_objects:
            objects.append(scene.object_state())
        if terminated or truncated:
            break
    return {
        "frames": np.stack(frames),
        "actions": np.stack(actions),
        "states": np.stack(states),
        "objects": np.stack(objects) if record_objects else None,
        "seed": reset_seed,
        "policy": policy,
    }


_worker_env: gym.Env | None = None
_worker_noise = 0.0


@contextlib.contextmanager
def _ignoring_sigint() -> Iterator[None]:
    """Ignore Ctrl-C while worker processes start: they inherit that and leave Ctrl-C to the parent,
    which stops the pool and writes the finished episodes (a worker interrupted while it holds the
    pool's queue lock would hang the pool's shutdown)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _init_worker(env_kwargs: dict[str, Any], noise: float, in_pool: bool = False) -> None:
    global _worker_env, _worker_noise
    if in_pool:  # a replacement worker started later did not inherit the ignored Ctrl-C
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_env = make_env(**env_kwargs)
    _worker_noise = noise


def _close_worker() -> None:
    global _worker_env
    if _worker_env is not None:
        _worker_env.close()
        _worker_env = None


def _worker_episode(plan: tuple[int, str, int]) -> dict[str, Any]:
    return run_episode(_worker_env, *plan, noise=_worker_noise)


def collect(
    env_id: str,
    episodes: int,
    out_dir: str | Path,
    policy: str = "mix",
    expert_fraction: float = 0.5,
    workers: int = 2,
    seed: int = 0,
    variation: str | None = None,
    image_size: int = 64,
    noise: float = 0.2,
    max_steps: int | None = None,
    chunk_frames: int = 4096,
    progress: bool = True,
) -> CollectResult:
    """Roll `episodes` episodes of `env_id` and append them to the trajectory folder `out_dir`.

    policy: "random" (uniform actions held for a few steps), "expert" (the env's scripted controller
        with Gaussian noise) or "mix" (each episode is expert with probability `expert_fraction`).
    noise: std of the expert's action noise, as a fraction of the action range's half-width.
    workers: env processes (spawned); 0 or 1 runs in this process.
    variation: the env's visual variation (worldjepa arm envs); None keeps the env's default.
    max_steps: episode length; None uses the env's registered length.
    Ctrl-C stops the workers at once and still writes every finished episode.
    """
    if policy not in POLICIES:
        raise UserError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if episodes < 1:
        raise UserError(f"episodes must be at least 1, got {episodes}")
    if not 0.0 <= expert_fraction <= 1.0:
        raise UserError(f"expert_fraction must be in [0, 1], got {expert_fraction}")
    env_kwargs = {"env_id": env_id, "image_size": image_size, "variation": variation, "max_steps": max_steps}
    probe = make_env(**env_kwargs)
    action_dim = int(np.prod(probe.action_space.shape))
    state_dim = int(np.prod(probe.observation_space["state"].shape))
    object_dim = getattr(probe.unwrapped, "object_dim", 0)
    if policy != "random" and type(probe.unwrapped).expert_action is GoalEnv.expert_action:
        raise UserError(f"{env_id!r} has no scripted expert; use policy='random'")
    probe.close()

    out_dir = Path(out_dir)
    first = TrajectoryDataset(out_dir, clip_length=1).num_episodes if (out_dir / "meta.json").exists() else 0
    plans = [episode_plan(seed, first + i, policy, expert_fraction) for i in range(episodes)]
    writer = TrajectoryWriter(
        out_dir,
        env_id,
        (image_size, image_size),
        action_dim,
        state_dim,
        variation or "default",
        chunk_frames,
        object_dim,
    )
    frames = 0
    start = time.perf_counter()
    bar = tqdm(total=episodes, unit="ep", desc=f"collect {env_id}", disable=not progress)
    with writer, bar:
        if workers <= 1:
            _init_worker(env_kwargs, noise)
            results = map(_worker_episode, plans)
            cleanup = _close_worker
        else:
            with _ignoring_sigint():
                pool = multiprocessing.get_context("spawn").Pool(
                    workers, _init_worker, (env_kwargs, noise, True)
                )
            results = pool.imap(_worker_episode, plans, chunksize=max(1, min(8, episodes // (4 * workers))))
            cleanup = pool.terminate
        try:
            for episode in results:
                writer.add_episode(
                    episode["frames"],
                    episode["actions"],
                    episode["states"],
                    episode["seed"],
                    variation,
                    episode["policy"],
                    episode["objects"],
                )
                frames += len(episode["frames"])
                bar.update(1)
                bar.set_postfix_str(f"{frames} frames")
        finally:
            cleanup()
    return CollectResult(out_dir, episodes, frames, time.perf_counter() - start)


def run_collect(env: EnvConfig, cfg: CollectConfig, out_dir: str | Path) -> CollectResult:
    """The collection a world-model preset describes, into `out_dir`, with a preview GIF beside it."""
    result = collect(
        env.id,
        cfg.episodes,
        out_dir,
        policy=cfg.policy,
        expert_fraction=cfg.expert_fraction,
        workers=cfg.workers,
        seed=cfg.seed,
        variation=env.variation,
        image_size=env.image_size,
        noise=cfg.noise,
    )
    write_episode_preview(out_dir, Path(out_dir) / "preview.gif")
    return result


def write_episode_preview(
    dataset_dir: str | Path,
    out_path: str | Path,
    episodes: int = 4,
    frames_per_episode: int = 8,
    scale: int = 2,
) -> Path:
    """Picture a few evenly spaced episodes: a `.png` grid (one row per episode, evenly spaced frames)
    or an animated `.gif` (the episodes side by side, played in step)."""
    out_path = Path(out_path)
    if out_path.suffix.lower() not in (".png", ".gif"):
        raise UserError(f"preview must be a .png or .gif file, got {out_path}")
    dataset = TrajectoryDataset(dataset_dir, clip_length=1)
    if dataset.num_episodes == 0:
        raise UserError(f"{dataset_dir} holds no readable episodes")
    picks = np.linspace(0, dataset.num_episodes - 1, min(episodes, dataset.num_episodes)).round().astype(int)
    clips = [dataset.episode(int(i))["frames"] for i in picks]
    if out_path.suffix.lower() == ".png":
        rows = [c[np.linspace(0, len(c) - 1, frames_per_episode).round().astype(int)] for c in clips]
        image = np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)
        iio.imwrite(out_path, image.repeat(scale, 0).repeat(scale, 1))
    else:
        length = max(len(c) for c in clips)
        held = [np.concatenate([c, np.repeat(c[-1:], length - len(c), 0)]) for c in clips]  # hold last frame
        video = np.concatenate(held, axis=2).repeat(scale, 1).repeat(scale, 2)
        iio.imwrite(out_path, video, duration=100, loop=0)
    return out_path
