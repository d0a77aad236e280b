"""Every worldjepa env id, registered with Gymnasium from one table; `make` with a clear error, and
`make_env` / `EnvConfig` for any env the stages run on (a worldjepa id, or any Gymnasium id that renders).

Importing this module registers the ids, so `gym.make("worldjepa/ArmReach-v0")` works after
`import worldjepa.envs.registry`. To add an env, add a row to `ENVS`.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym

from worldjepa.envs.gym_adapter import GymPixelsAdapter
from worldjepa.envs.rendering import gl_backend
from worldjepa.envs.rollout_goal import RolloutGoal
from worldjepa.envs.variations import get_variation
from worldjepa.errors import UserError


@dataclasses.dataclass(frozen=True)
class EnvEntry:
    """Where an env class lives, how long its episodes are by default, whether it has the visual
    variations of `worldjepa.envs.variations` (the arm scene), and its `scene`: envs of one scene see
    the same world through the same camera and act alike, so a world model trained in one plans in all
    (e.g. a model trained on Pick-and-place data plans a Grasp); None: the env id alone."""

    entry_point: str
    max_episode_steps: int
    variations: bool = False
    scene: str | None = None


ENVS: dict[str, EnvEntry] = {
    "worldjepa/ArmReach-v0": EnvEntry("worldjepa.envs.arm:ArmReachEnv", 50, variations=True),
    "worldjepa/ArmPush-v0": EnvEntry("worldjepa.envs.arm:ArmPushEnv", 100, True, "arm with block"),
    "worldjepa/ArmGrasp-v0": EnvEntry("worldjepa.envs.arm:ArmGraspEnv", 60, True, "arm with block"),
    "worldjepa/ArmPickPlace-v0": EnvEntry("worldjepa.envs.arm:ArmPickPlaceEnv", 100, True, "arm with block"),
    "worldjepa/TwoRooms-v0": EnvEntry("worldjepa.envs.two_rooms:TwoRoomsEnv", 100),
    "worldjepa/DMCReacher-v0": EnvEntry("worldjepa.envs.dmc_reacher:DMCReacherEnv", 100),
}


def same_scene(env_a: str, env_b: str) -> bool:
    """Whether a world model trained in one env can plan in the other: the same id, or one `scene`."""
    scene_a, scene_b = (ENVS[e].scene if e in ENVS else None for e in (env_a, env_b))
    return env_a == env_b or (scene_a is not None and scene_a == scene_b)


def register_all() -> None:
    """Register every id of `ENVS` with Gymnasium (ids already registered are left alone)."""
    for env_id, entry in ENVS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry.entry_point, max_episode_steps=entry.max_episode_steps)


def make(env_id: str, **kwargs) -> gym.Env:
    """`gymnasium.make` for a worldjepa id; an unknown id is a UserError that lists the valid ones.
    Keyword arguments go to the env (e.g. `image_size`, `variation`) or to Gymnasium
    (e.g. `max_episode_steps`)."""
    if env_id not in ENVS:
        raise UserError(f"unknown env id {env_id!r}; valid ids: {', '.join(ENVS)}")
    check_variation(env_id, kwargs.get("variation"))
    register_all()
    return gym.make(env_id, **kwargs)


def make_env(
    env_id: str, image_size: int, variation: str | None = None, max_steps: int | None = None
) -> gym.Env:
    """A worldjepa env by id, or any Gymnasium id that renders `rgb_array`, wrapped by `GymPixelsAdapter`."""
    limits = {} if max_steps is None else {"max_episode_steps": int(max_steps)}
    check_variation(env_id, variation)
    if env_id in ENVS:
        extra = {} if variation is None else {"variation": variation}
        return make(env_id, image_size=image_size, **extra, **limits)
    gl_backend()  # Gymnasium's MuJoCo envs read MUJOCO_GL when they first render
    try:
        env = gym.make(env_id, render_mode="rgb_array", **limits)
    except gym.error.Error as error:
        raise UserError(f"cannot make env {env_id!r}: {error}; worldjepa ids: {', '.join(ENVS)}") from None
    return GymPixelsAdapter(env, image_size=image_size)


def check_variation(env_id: str, variation: str | None) -> None:
    """A visual variation must be one of the arm scene's, for an env that has them."""
    if variation is None:
        return
    with_variations = [env for env, entry in ENVS.items() if entry.variations]
    if env_id not in with_variations:
        raise UserError(
            f"{env_id} has no visual variations (only {', '.join(with_variations)} do); drop the variation"
        )
    get_variation(variation)


@dataclasses.dataclass
class EnvConfig:
    """The `env:` section of a world-model preset: which world (a worldjepa id, or any Gymnasium id that
    renders), at which camera resolution, in which visual variation (worldjepa arm envs: default, colors,
    texture, lighting, camera, distractors; None: the env's own). A Gymnasium env has no goal of its own:
    its goal image is the frame `goal_steps` random actions ahead of the start, and success is its state
    within `goal_threshold` of that frame's (`worldjepa.envs.rollout_goal`)."""

    id: str = "worldjepa/ArmReach-v0"
    image_size: int = 64
    variation: str | None = None
    goal_steps: int = 25
    goal_threshold: float = 0.1

    def __post_init__(self) -> None:
        check_variation(self.id, self.variation)
        if self.image_size < 1 or self.goal_steps < 1 or not self.goal_threshold > 0:
            raise UserError(
                f"env.image_size and env.goal_steps must be >= 1 and env.goal_threshold > 0, got {self.image_size}, "
                f"{self.goal_steps} and {self.goal_threshold}"
            )

    def make(self, max_steps: int | None = None) -> gym.Env:
        """A fresh env as configured, with goals."""
        env = make_env(self.id, self.image_size, self.variation, max_steps)
        return env if self.id in ENVS else RolloutGoal(env, self.goal_steps, self.goal_threshold)


register_all()
