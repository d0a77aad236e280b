"""The state of a world model that tracks an object (Push's block): what its modules are fitted on.

A pushed block goes where the hand sends it, and on after the hand stops: a planner that does not see it
cannot correct a push that drifts (docs/results.md). A world model with an object locator tracks the block:

    tracked state = [the robot's proprio (S), the object's state (O), how far the object moved (LOCATED)]

The object's state is the simulator's `GoalEnv.object_state` (the block's x, y and its yaw as cos / sin of
4 yaw), recorded with the episodes for fitting only: at planning time the object locator reads its x, y
from the camera image and the robot's proprio, the state readout its yaw, and its motion is the
difference of two reads. The proprio head rolls the whole tracked state forward (where a pushed block goes
next depends on how it moves: given its last move, the head's error on a moving block halves), and the
predictor's state tokens keep the proprio alone. Frames whose object state is NaN (random motions knocked
the block off the table) are left out of every fit: they teach nothing a task needs, and their
metre-scale errors would dominate a squared loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from worldjepa.data.trajectories import TrajectoryDataset
from worldjepa.errors import UserError
from worldjepa.methods.proprio_fit import Transitions, episode_transitions

#: Object values the locator reads from the image (the first ones: x, y on the table) and whose motion
#: the tracked state carries.
LOCATED = 2


def with_motion(objects: Tensor) -> Tensor:
    """One episode's object states [T, O] -> [T, O + LOCATED]: each followed by how far its located values
    moved in the env action before it (zero before the first)."""
    located = objects[:, :LOCATED]
    moved = torch.diff(located, dim=0, prepend=located[:1])
    return torch.cat([objects, moved], dim=1)


class ObjectFrames(NamedTuple):
    """Every recorded frame whose object state is known: uint8 frames [M, H, W, 3], proprio [M, S], object
    states [M, O], episode numbers [M]."""

    frames: Tensor
    proprio: Tensor
    objects: Tensor
    episodes: Tensor


def recorded_objects(trajectories: str | Path, frame_skip: int = 1) -> tuple[ObjectFrames, Transitions]:
    """The frames of `trajectories` with a known object state, and every transition of the tracked state
    (`with_motion`) over `frame_skip` env actions between two of them."""
    data = TrajectoryDataset(trajectories, clip_length=1)
    if not data.meta.get("object_dim"):
        raise UserError(
            f"{trajectories} does not record object states (collected before worldjepa recorded them, or in an "
            "env without objects): collect it again to fit a world model that tracks objects"
        )
    frames, proprio, objects, episodes, transitions = [], [], [], [], []
    for index in range(data.num_episodes):
        episode = data.episode(index)
        states, known = torch.from_numpy(episode["states"]), torch.from_numpy(episode["objects"])
        tracked = torch.cat([states, with_motion(known)], dim=1)
        seen = torch.isfinite(tracked).all(1)
        frames.append(torch.from_numpy(episode["frames"])[seen])
        proprio.append(states[seen])
        objects.append(known[seen])
        episodes.append(torch.full((int(seen.sum()),), index))
        actions = torch.from_numpy(episode["actions"])
        if len(actions) < frame_skip:
            continue
        before, actions, after = episode_transitions(tracked, actions, frame_skip)
        both = seen[: len(before)] & seen[frame_skip:]
        transitions.append((before[both], actions[both], after[both]))
    kept = ObjectFrames(*(torch.cat(part) for part in (frames, proprio, objects, episodes)))
    if not len(kept.frames):
        raise UserError(f"no frame of {trajectories} shows its object (every object state is NaN)")
    return kept, Transitions(*(torch.cat(part) for part in zip(*transitions, strict=True)), None)
