"""Pictures of closed-loop episodes: a GIF of each episode beside the goal image it plans toward at
each step (a sub-goal image, or the goal), and a plot of distance and success over time across episodes.

Env frames are tiny (64 px), so the GIF upscales them by an integer factor (nearest neighbour, no
blur) and writes the step counter and a success mark in a caption band above the images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

_GAP = 6  # pixels between the current frame and the goal image
_CAPTION = 18  # height of the caption band
_GREEN, _GREY = (40, 180, 60), (235, 235, 235)


def _upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """[H, W, 3] uint8 -> [H*factor, W*factor, 3], nearest neighbour."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def compose_frame(
    pixels: np.ndarray, goal: np.ndarray, step: int, success: bool, size: int = 256, goal_label: str = "goal"
) -> np.ndarray:
    """One GIF frame: the current frame (green border on success) beside the goal image (captioned
    `goal_label`), with a caption.

    pixels, goal: [H, W, 3] uint8; returns [_CAPTION + H*k, 2*W*k + _GAP, 3] uint8 with k = size // H.
    """
    factor = max(1, size // pixels.shape[0])
    current, target = _upscale(pixels, factor), _upscale(goal, factor)
    if success:
        current = current.copy()
        current[:3], current[-3:], current[:, :3], current[:, -3:] = _GREEN, _GREEN, _GREEN, _GREEN
    height, width = current.shape[0], current.shape[1]
    canvas = np.full((_CAPTION + height, 2 * width + _GAP, 3), 255, dtype=np.uint8)
    canvas[_CAPTION:, :width] = current
    canvas[_CAPTION:, width + _GAP :] = target
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, canvas.shape[1], _CAPTION - 1], fill=_GREY)
    draw.text(
        (4, 3), f"step {step}" + ("  SUCCESS" if success else ""), fill=_GREEN if success else (0, 0, 0)
    )
    draw.text((width + _GAP + 4, 3), goal_label, fill=(0, 0, 0))
    return np.asarray(image)


def save_episode_gif(
    path: str | Path,
    frames: Sequence[np.ndarray],
    goals: Sequence[np.ndarray],
    successes: Sequence[bool],
    heading: Sequence[int] | None = None,
    fps: int = 8,
    size: int = 256,
) -> Path:
    """frames: T x [H, W, 3] uint8 (frame t after t steps), successes: T flags -> a looping GIF.

    goals: the goal images in the order they are planned toward (sub-goals, then the goal); heading: T
    indices into goals, the one each frame's next action heads for (None: the one goal image).
    """
    heading = [0] * len(frames) if heading is None else heading
    if len(heading) != len(frames) or not all(0 <= index < len(goals) for index in heading):
        raise ValueError(
            f"heading needs one index into the {len(goals)} goal images per frame ({len(frames)})"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = []
    for t, (frame, success, index) in enumerate(zip(frames, successes, heading, strict=True)):
        last = len(goals) - 1
        label = "goal" if index == last else f"sub-goal {index + 1} of {last}"
        images.append(compose_frame(frame, goals[index], t, success, size, label))
    imageio.mimsave(path, images, duration=1000 / fps, loop=0)
    return path


def plot_episodes(
    distances: Sequence[Sequence[float]], successes: Sequence[Sequence[bool]], path: str | Path
) -> Path:
    """Distance to the goal per episode (thin) and their mean (thick), and the fraction of episodes in
    success at each step; an episode that ended early keeps its last value."""
    steps = max(len(d) for d in distances)
    padded = np.array([list(d) + [d[-1]] * (steps - len(d)) for d in distances], dtype=float)
    success = np.array([list(s) + [s[-1]] * (steps - len(s)) for s in successes], dtype=float)
    fig = Figure(figsize=(9, 3.5))  # no pyplot: no global figure state, no backend switch
    ax_d, ax_s = fig.subplots(1, 2)
    ax_d.plot(padded.T, color="tab:blue", alpha=0.25, linewidth=0.8)
    ax_d.plot(padded.mean(0), color="tab:blue", linewidth=2.0, label="mean")
    ax_d.set(xlabel="step", ylabel="distance to goal", title="distance over time")
    ax_d.legend()
    ax_s.plot(success.mean(0), color=np.array(_GREEN) / 255, linewidth=2.0)
    ax_s.set(xlabel="step", ylabel="fraction of episodes", title="in success", ylim=(-0.02, 1.02))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
