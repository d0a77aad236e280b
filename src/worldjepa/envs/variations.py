"""Visual variations of the arm world, for zero-shot tests: they change what the camera sees, never the
physics (distractors are visual-only geoms, colours and lights do not enter the dynamics).

A variation is a plain record of concrete values, so it is applied the same way every time; pick one
per env instance with `gym.make(env_id, variation="colors")` or pass a `Variation`. The test scenes are
`PRESETS`; `TRAINING_LOOKS` are for collecting training data only (domain randomisation: a look drawn
anew at every reset, e.g. `random_lights`), never a zero-shot test.
"""

from __future__ import annotations

import dataclasses

from worldjepa.errors import UserError

RGBA = tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class Distractor:
    """A visual-only box on the table at a spot the arm never needs."""

    position: tuple[float, float, float]
    half_size: tuple[float, float, float]
    rgba: RGBA


@dataclasses.dataclass(frozen=True)
class Variation:
    """How the scene looks: colours, table texture, lighting, camera placement, distractors."""

    name: str = "default"
    block_rgba: RGBA = (0.85, 0.15, 0.1, 1.0)
    table_rgba: RGBA = (0.55, 0.42, 0.3, 1.0)
    arm_rgba: RGBA = (0.8, 0.8, 0.82, 1.0)
    #: Second colour of a checker texture on the table; `None` draws the table in one colour.
    table_checker_rgba: RGBA | None = None
    light_diffuse: float = 0.7
    light_direction: tuple[float, float, float] = (0.3, 0.2, -1.0)
    ambient: float = 0.25
    #: Offset (metres) added to the camera position; the camera keeps looking at the workspace.
    camera_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    distractors: tuple[Distractor, ...] = ()
    #: Draw the light's direction and strength and the ambient light anew at every reset, within
    #: `LIGHT_RANGES` (domain randomisation for training data); the values above are then unused.
    random_lights: bool = False


#: The ranges `random_lights` draws from, uniformly: the light's diffuse strength, the ambient light, the
#: light direction's downward component (its horizontal heading is any). They span the default scene
#: (0.7, 0.25, -0.93) and are wide enough to hold other lights, the test scene `lighting` among them.
LIGHT_RANGES = {"diffuse": (0.3, 0.9), "ambient": (0.1, 0.35), "down": (0.4, 1.0)}


PRESETS: dict[str, Variation] = {
    "default": Variation(),
    "colors": Variation(
        name="colors",
        block_rgba=(0.1, 0.35, 0.9, 1.0),
        table_rgba=(0.3, 0.55, 0.35, 1.0),
        arm_rgba=(0.95, 0.75, 0.2, 1.0),
    ),
    "texture": Variation(name="texture", table_checker_rgba=(0.35, 0.28, 0.2, 1.0)),
    "lighting": Variation(
        name="lighting", light_diffuse=0.45, light_direction=(-0.8, 0.6, -0.6), ambient=0.15
    ),
    "camera": Variation(name="camera", camera_shift=(-0.08, 0.1, 0.06)),
    "distractors": Variation(
        name="distractors",
        distractors=(
            Distractor((0.5, -0.3, 0.03), (0.03, 0.03, 0.03), (0.1, 0.6, 0.2, 1.0)),
            Distractor((0.12, 0.3, 0.045), (0.02, 0.02, 0.045), (0.9, 0.8, 0.1, 1.0)),
            Distractor((0.12, -0.3, 0.02), (0.04, 0.025, 0.02), (0.2, 0.3, 0.8, 1.0)),
        ),
    ),
}


TRAINING_LOOKS: dict[str, Variation] = {
    "random_lights": Variation(name="random_lights", random_lights=True),
}


def get_variation(variation: str | Variation) -> Variation:
    """The `Variation` for a test scene or training look name (or the given `Variation` itself)."""
    if isinstance(variation, Variation):
        return variation
    known = {**PRESETS, **TRAINING_LOOKS}
    if variation not in known:
        raise UserError(f"unknown variation {variation!r}; choose one of {', '.join(known)}")
    return known[variation]
