"""Headless MuJoCo rendering: pick an OpenGL backend that works here, then draw fixed-camera frames.

MuJoCo chooses its OpenGL backend from `MUJOCO_GL` once, when a GL module is first imported, and an
unset value fails on a machine without a display. So we settle `MUJOCO_GL` before creating any GL
context: a user-set value is respected; otherwise `egl` is tried, then `osmesa`, each probed in a
throw-away subprocess (a failed backend can leave PyOpenGL half-initialised in this process). We then
import that backend's `GLContext` explicitly, which also works when `mujoco` was imported earlier.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import os
import subprocess
import sys
import weakref
from typing import Any

import mujoco
import numpy as np

from worldjepa.envs.gl_setting import user_gl_backend
from worldjepa.errors import UserError

_BACKEND_MODULES = {  # one per GL_BACKENDS
    "egl": "mujoco.egl",
    "osmesa": "mujoco.osmesa",
    "glfw": "mujoco.glfw",
    "glx": "mujoco.glfw",
}
_PROBE = "import {module} as m; c = m.GLContext(8, 8); c.make_current(); c.free()"
_INSTALL_HINT = (
    "no working OpenGL for MuJoCo rendering: install EGL (`apt-get install libegl1 libgl1-mesa-dri`) "
    "or OSMesa (`apt-get install libosmesa6`), then set MUJOCO_GL=egl or MUJOCO_GL=osmesa"
)


def _backend_works(backend: str) -> bool:
    """Whether a GL context of `backend` can be made current, tried in a fresh interpreter."""
    env = dict(os.environ, MUJOCO_GL=backend)
    env.pop("PYOPENGL_PLATFORM", None)
    code = _PROBE.format(module=_BACKEND_MODULES[backend])
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@functools.cache
def gl_backend() -> str:
    """The OpenGL backend used for rendering; sets `MUJOCO_GL` when the user has not."""
    chosen = user_gl_backend()
    if chosen:
        return chosen
    for backend in ("egl", "osmesa"):
        if _backend_works(backend):
            os.environ["MUJOCO_GL"] = backend
            return backend
    raise UserError(_INSTALL_HINT)


class OffscreenRenderer:
    """Draws one fixed camera of a model into an `[H, W, 3]` uint8 array; shadows, reflections and
    the skybox are off because they cost far more than they tell a small world model."""

    def __init__(self, model: mujoco.MjModel, camera: str, height: int, width: int) -> None:
        module = importlib.import_module(_BACKEND_MODULES[gl_backend()])
        try:
            self._gl = module.GLContext(width, height)
            self._gl.make_current()
        except Exception as error:  # the backend's own error types differ
            raise UserError(f"{_INSTALL_HINT} ({type(error).__name__}: {error})") from error
        self._model = model
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_50)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._scene = mujoco.MjvScene(model, maxgeom=200)
        for flag in (
            mujoco.mjtRndFlag.mjRND_SHADOW,
            mujoco.mjtRndFlag.mjRND_REFLECTION,
            mujoco.mjtRndFlag.mjRND_SKYBOX,
        ):
            self._scene.flags[flag] = False
        self._option = mujoco.MjvOption()
        self._perturb = mujoco.MjvPerturb()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        self._viewport = mujoco.MjrRect(0, 0, width, height)
        self._buffer = np.empty((height, width, 3), dtype=np.uint8)
        # Free GL resources before the backend's own exit hooks tear the display down.
        self._finalizer = weakref.finalize(self, _free, self._context, self._gl)
        # atexit runs last-registered first: this frees the context before the GL backend's own exit hook
        # (registered when the backend was imported) tears the display down, which would make it fail loudly
        atexit.register(self._finalizer)

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """The current frame (call `mj_forward` first so positions are up to date)."""
        self._gl.make_current()
        mujoco.mjv_updateScene(
            self._model,
            data,
            self._option,
            self._perturb,
            self._camera,
            mujoco.mjtCatBit.mjCAT_ALL,
            self._scene,
        )
        mujoco.mjr_render(self._viewport, self._scene, self._context)
        mujoco.mjr_readPixels(self._buffer, None, self._viewport, self._context)
        return self._buffer[::-1].copy()  # OpenGL rows start at the bottom

    def close(self) -> None:
        """Free the GL context (safe to call twice)."""
        self._finalizer()


def _free(context: mujoco.MjrContext, gl: Any) -> None:
    gl.make_current()  # MjrContext.free deletes GL objects of whichever context is current
    context.free()
    gl.free()
