"""`MUJOCO_GL`, checked before MuJoCo is imported: `import mujoco` itself fails with a traceback on a
value it does not know, before any check of ours could run."""

from __future__ import annotations

import os

from worldjepa.errors import UserError

#: The OpenGL backends worldjepa renders with (`worldjepa.envs.rendering`).
GL_BACKENDS = ("egl", "osmesa", "glfw", "glx")


def user_gl_backend() -> str:
    """`MUJOCO_GL` as the user set it, lower-cased ("" when unset); any other value is a UserError."""
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen and chosen not in GL_BACKENDS:
        raise UserError(
            f"MUJOCO_GL={chosen!r} is not supported; set it to one of {', '.join(GL_BACKENDS)}, or unset it "
            "and worldjepa picks one that works"
        )
    return chosen
