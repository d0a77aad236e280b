"""Simulated worlds with the Gymnasium API (see `base.py` for the contract every env follows).

Importing this package registers every worldjepa id with Gymnasium, so `gym.make("worldjepa/ArmReach-v0")`
works after `import worldjepa.envs`; `worldjepa.envs.make` gives a clear error for an unknown id.
"""

from worldjepa.envs.gl_setting import user_gl_backend

user_gl_backend()  # refuses a bad MUJOCO_GL before MuJoCo is imported below (it would fail with a traceback)

from worldjepa.envs.registry import ENVS, EnvConfig, make, make_env  # noqa: E402

__all__ = ["ENVS", "EnvConfig", "make", "make_env"]
