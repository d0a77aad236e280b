"""Draw docs/images/arm_gallery.png: what the camera of each arm task sees under each variation, the
start frame next to the goal image, and one frame at 64, 128 and 256 pixels.

    python benchmarks/env_gallery.py [--out docs/images/arm_gallery.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from worldjepa.envs.registry import make  # noqa: E402
from worldjepa.envs.variations import PRESETS  # noqa: E402

TASKS = ["worldjepa/ArmReach-v0", "worldjepa/ArmPush-v0", "worldjepa/ArmPickPlace-v0"]
SEED = 3
EXPERT_STEPS = 12  # a little into the episode, so the arm is among the objects


def mid_episode_frame(env_id: str, **kwargs) -> np.ndarray:
    env = make(env_id, **kwargs)
    env.reset(seed=SEED)
    for _ in range(EXPERT_STEPS):
        observation = env.step(env.unwrapped.expert_action())[0]
    env.close()
    return observation["pixels"]


def start_and_goal(env_id: str) -> tuple[np.ndarray, np.ndarray]:
    env = make(env_id)
    start = env.reset(seed=SEED)[0]["pixels"]
    goal = env.unwrapped.goal_observation()["pixels"]
    env.close()
    return start, goal


def draw_gallery(out: Path) -> None:
    """Rows: one per task across the variations (64 px); start/goal pairs; Push at three sizes."""
    columns = len(PRESETS)
    figure, axes = plt.subplots(len(TASKS) + 2, columns, figsize=(2 * columns, 2 * (len(TASKS) + 2)))
    for row, env_id in enumerate(TASKS):
        for column, name in enumerate(PRESETS):
            axes[row, column].imshow(mid_episode_frame(env_id, variation=name))
            axes[row, column].set_title(f"{env_id.split('/')[1].removesuffix('-v0')} · {name}", fontsize=8)
    pair_row = len(TASKS)
    for index, env_id in enumerate(TASKS):
        start, goal = start_and_goal(env_id)
        short = env_id.split("/")[1].removesuffix("-v0")
        for offset, (image, label) in enumerate([(start, "start"), (goal, "goal image")]):
            axes[pair_row, 2 * index + offset].imshow(image)
            axes[pair_row, 2 * index + offset].set_title(f"{short} · {label}", fontsize=8)
    size_row = len(TASKS) + 1
    for column, size in enumerate((64, 128, 256)):
        axes[size_row, column].imshow(mid_episode_frame("worldjepa/ArmPush-v0", image_size=size))
        axes[size_row, column].set_title(f"Push · {size}x{size}", fontsize=8)
    for axis in axes.flat:
        axis.axis("off")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/arm_gallery.png"))
    args = parser.parse_args()
    draw_gallery(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
