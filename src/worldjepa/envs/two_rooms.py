"""Two Rooms: a point agent in a square world split by a wall with one door (as in PLDM and EB-JEPA).

Pure numpy, so it steps and renders thousands of frames per second on one core and makes the fastest
end-to-end benchmark of the library. Geometry lives in a 65 x 65 "world pixel" frame; images of any
size are rendered from it, so a 64 px dataset and the 65 px benchmark see the same world.

Success (the peers' criterion): the agent centre is within 4.5 world px of the goal at the end.
Episode length comes from the registry (`gym.make` adds the time limit), as for every worldjepa env.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from worldjepa.envs.base import GoalEnv, check_action
from worldjepa.errors import UserError

WORLD_SIZE = 65.0
SUCCESS_RADIUS = 4.5
_BORDER = 3.0  # outer wall thickness: free space is [3, 62] on both axes
_WALL_X = (31.0, 34.0)  # the middle wall spans these x
_BACKGROUND = np.array([0, 0, 0], np.float32)
_WALL_COLOR = np.array([200, 200, 200], np.float32)
_AGENT_COLOR = np.array([255, 60, 60], np.float32)


class TwoRoomsEnv(gym.Env, GoalEnv):
    """Point agent, 2-D displacement actions in world pixels, top-down RGB image.

    `goal_mode="other_room"` puts start and goal in different rooms (the benchmark setting);
    `"random"` samples both anywhere. `door_center=None` samples the door height per episode.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    success_criterion = "agent within 4.5 px of the goal at the end of the episode (65 px world)"

    def __init__(
        self,
        image_size: int = 65,
        max_step_px: float = 3.0,
        goal_mode: str = "other_room",
        door_center: float | None = 20.0,
        door_half_width: float = 5.0,
        agent_radius: float = 1.5,
    ) -> None:
        if goal_mode not in ("other_room", "random"):
            raise UserError(f"goal_mode must be 'other_room' or 'random', got {goal_mode!r}")
        if image_size < 8:
            raise UserError(f"image_size must be at least 8 px, got {image_size}")
        self.image_size = int(image_size)
        self.max_step_px = float(max_step_px)
        self.goal_mode = goal_mode
        self.fixed_door_center = door_center
        self.door_half_width = float(door_half_width)
        self.agent_radius = float(agent_radius)
        self.render_mode = "rgb_array"
        s = self.image_size
        self.observation_space = gym.spaces.Dict(
            pixels=gym.spaces.Box(0, 255, (s, s, 3), np.uint8),
            state=gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
        )
        self.action_space = gym.spaces.Box(-self.max_step_px, self.max_step_px, (2,), np.float32)
        # World coordinates of the pixel centres: every frame is a function of these.
        centres = (np.arange(s, dtype=np.float32) + 0.5) * (WORLD_SIZE / s)
        self._grid_y, self._grid_x = np.meshgrid(centres, centres, indexing="ij")
        self._pos = np.zeros(2, np.float64)
        self._goal = np.zeros(2, np.float64)
        self._set_door(float(door_center) if door_center is not None else WORLD_SIZE / 2)

    # ---- geometry -------------------------------------------------------------------------------------

    def _blocked(self, p: np.ndarray) -> bool:
        """Whether the agent centre at `p` overlaps the middle wall (walls inflated by the agent radius)."""
        r = self.agent_radius
        in_wall_x = _WALL_X[0] - r < p[0] < _WALL_X[1] + r
        in_door = abs(p[1] - self._door) <= self.door_half_width - r
        return bool(in_wall_x and not in_door)

    def _move(self, pos: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """Move one axis at a time, stopping at walls, so the agent slides along them and can never
        tunnel (a step is shorter than the inflated wall)."""
        lo, hi = _BORDER + self.agent_radius, WORLD_SIZE - _BORDER - self.agent_radius
        p = pos.copy()
        for axis in (0, 1):
            trial = p.copy()
            trial[axis] = np.clip(p[axis] + delta[axis], lo, hi)
            if self._blocked(trial):
                if axis == 0:  # stop at the wall face on the side we come from
                    r = self.agent_radius
                    trial[0] = _WALL_X[0] - r if p[0] < _WALL_X[0] else _WALL_X[1] + r
                else:  # inside the door corridor: stop at the door edge
                    edge = self.door_half_width - self.agent_radius
                    trial[1] = self._door + np.clip(p[1] - self._door, -edge, edge)
            p = trial
        return p

    def _room(self, p: np.ndarray) -> int:
        return 0 if p[0] < (_WALL_X[0] + _WALL_X[1]) / 2 else 1

    def _sample_point(self, room: int | None) -> np.ndarray:
        margin = _BORDER + self.agent_radius + 1.0
        inner = (_WALL_X[0] - self.agent_radius - 1.0, _WALL_X[1] + self.agent_radius + 1.0)
        x_ranges = [(margin, inner[0]), (inner[1], WORLD_SIZE - margin)]
        room = int(self.np_random.integers(2)) if room is None else room
        x = self.np_random.uniform(*x_ranges[room])
        y = self.np_random.uniform(margin, WORLD_SIZE - margin)
        return np.array([x, y])

    # ---- rendering ------------------------------------------------------------------------------------

    def _set_door(self, door_center: float) -> None:
        """Move the door and redraw the static part of the image (float for blending, uint8 to copy)."""
        self._door = door_center
        self._background = self._draw_background()
        self._background_u8 = (self._background + 0.5).astype(np.uint8)

    def _draw_background(self) -> np.ndarray:
        gx, gy = self._grid_x, self._grid_y
        outer = (gx < _BORDER) | (gx > WORLD_SIZE - _BORDER) | (gy < _BORDER) | (gy > WORLD_SIZE - _BORDER)
        middle = (gx >= _WALL_X[0]) & (gx < _WALL_X[1]) & (np.abs(gy - self._door) > self.door_half_width)
        wall = (outer | middle)[..., None]
        return np.where(wall, _WALL_COLOR, _BACKGROUND).astype(np.float32)

    def _draw(self, agent: np.ndarray) -> np.ndarray:
        """Background plus a Gaussian blob (std = agent radius) at `agent`, as uint8 [H, W, 3]. Only the
        pixels within 4 std of the agent are blended (the rest of the blob rounds to zero), which
        makes a frame about 20x cheaper than blending the whole image."""
        img = self._background_u8.copy()
        per_px = self.image_size / WORLD_SIZE
        reach = 4 * self.agent_radius * per_px + 1
        cx, cy = agent[0] * per_px, agent[1] * per_px
        rows = slice(max(int(cy - reach), 0), int(cy + reach) + 1)
        cols = slice(max(int(cx - reach), 0), int(cx + reach) + 1)
        d2 = (self._grid_x[rows, cols] - agent[0]) ** 2 + (self._grid_y[rows, cols] - agent[1]) ** 2
        alpha = np.exp(-d2 / (2 * self.agent_radius**2))[..., None]
        patch = self._background[rows, cols] * (1 - alpha) + _AGENT_COLOR * alpha
        img[rows, cols] = (patch + 0.5).astype(np.uint8)
        return img

    def render(self) -> np.ndarray:
        return self._draw(self._pos)

    # ---- gymnasium API --------------------------------------------------------------------------------

    def _observation(self, agent: np.ndarray) -> dict[str, np.ndarray]:
        return {"pixels": self._draw(agent), "state": agent.astype(np.float32)}

    def _info(self) -> dict[str, Any]:
        distance = float(np.linalg.norm(self._pos - self._goal))
        return {"distance": distance, "success": distance < SUCCESS_RADIUS}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if self.fixed_door_center is None:
            self._set_door(float(self.np_random.uniform(12.0, WORLD_SIZE - 12.0)))
        start_room = int(self.np_random.integers(2))
        self._pos = self._sample_point(start_room)
        goal_room = 1 - start_room if self.goal_mode == "other_room" else None
        self._goal = self._sample_point(goal_room)
        return self._observation(self._pos), self._info()

    def step(self, action):
        action = check_action(action, self.action_space)
        self._pos = self._move(self._pos, action.astype(np.float64))
        return self._observation(self._pos), 0.0, False, False, self._info()

    # ---- GoalEnv --------------------------------------------------------------------------------------

    def goal_observation(self) -> dict[str, np.ndarray]:
        return self._observation(self._goal)

    def _waypoint(self) -> np.ndarray:
        """Next point to head for: the goal itself in the same room, else the door on the way."""
        r = self.agent_radius
        in_corridor = _WALL_X[0] - r - 0.5 < self._pos[0] < _WALL_X[1] + r + 0.5
        if not in_corridor and self._room(self._pos) == self._room(self._goal):
            return self._goal
        goal_side = self._room(self._goal)
        exit_x = _WALL_X[1] + r + 1.0 if goal_side == 1 else _WALL_X[0] - r - 1.0
        aligned = abs(self._pos[1] - self._door) < max(self.door_half_width - r - 1.0, 0.5)
        if in_corridor or aligned:
            return np.array([exit_x, self._door])
        approach_x = _WALL_X[0] - r - 1.0 if self._room(self._pos) == 0 else _WALL_X[1] + r + 1.0
        return np.array([approach_x, self._door])

    def expert_action(self, rng: np.random.Generator | None = None, noise: float = 0.0) -> np.ndarray:
        delta = self._waypoint() - self._pos
        largest = np.abs(delta).max()
        if largest > self.max_step_px:
            delta = delta * (self.max_step_px / largest)
        if noise > 0:
            delta = delta + (rng if rng is not None else self.np_random).normal(0.0, noise, 2)
        return np.clip(delta, -self.max_step_px, self.max_step_px).astype(np.float32)

    def get_sim_state(self) -> dict[str, Any]:
        return {"pos": self._pos.copy(), "goal": self._goal.copy(), "door": self._door}

    def set_sim_state(self, state: dict[str, Any]) -> None:
        self._pos = np.array(state["pos"], np.float64)
        self._goal = np.array(state["goal"], np.float64)
        if state["door"] != self._door:
            self._set_door(float(state["door"]))
