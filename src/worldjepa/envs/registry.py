"""Every worldjepa env id, registered with Gymnasium from one table, and `make` with a clear error.

Importing this module registers the ids, so `gym.make("worldjepa/ArmReach-v0")` works after
`import worldjepa.envs.registry`. To add an env, add a row to `ENVS`.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym

from worldjepa.errors import UserError


@dataclasses.dataclass(frozen=True)
class EnvEntry:
    """Where an env class lives and how long its episodes are by default."""

    entry_point: str
    max_episode_steps: int


ENVS: dict[str, EnvEntry] = {
    "worldjepa/ArmReach-v0": EnvEntry("worldjepa.envs.arm:ArmReachEnv", 50),
    "worldjepa/ArmPush-v0": EnvEntry("worldjepa.envs.arm:ArmPushEnv", 100),
    "worldjepa/ArmPickPlace-v0": EnvEntry("worldjepa.envs.arm:ArmPickPlaceEnv", 100),
    "worldjepa/TwoRooms-v0": EnvEntry("worldjepa.envs.two_rooms:TwoRoomsEnv", 100),
    "worldjepa/DMCReacher-v0": EnvEntry("worldjepa.envs.dmc_reacher:DMCReacherEnv", 100),
}


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
    register_all()
    return gym.make(env_id, **kwargs)


register_all()
