"""Simulated worlds with the Gymnasium API (see `base.py` for the contract every env follows).

Importing this package registers every worldjepa id with Gymnasium, so `gym.make("worldjepa/ArmReach-v0")`
works after `import worldjepa.envs`; `worldjepa.envs.make` gives a clear error for an unknown id.
"""

from worldjepa.envs.registry import ENVS, EnvConfig, make, make_env

__all__ = ["ENVS", "EnvConfig", "make", "make_env"]
