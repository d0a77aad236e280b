"""The simulated tabletop robot arm and its goal-image tasks: Reach, Push, Grasp and PickPlace.

One `ArmEnv` holds everything the tasks share (scene, control, observation, rendering, snapshots);
each task only says how an episode starts, what its goal configuration looks like, how far it is from
success, and how a scripted expert solves it.

Control follows DROID-style end-effector control: an action is `[dx, dy, dz, gripper]` in [-1, 1].
The xyz part moves the grasp point by up to `MAX_STEP` metres per step (added to where it is now and
kept inside the workspace); the gripper part is an absolute opening command (-1 closed, +1 open).
Inside the env the Cartesian target becomes joint targets through closed-form inverse kinematics, and
position actuators drive the joints over several physics substeps: the arm is simulated, not teleported.

The 7-D `state` is [x, y, z, roll, pitch, yaw, gripper opening]: the grasp point in metres, the
hand's extrinsic xyz Euler angles (all zero with the gripper pointing down and facing +x, so the usual
range has no wrap-around) and the distance between the finger pads in metres.

The reward is minus the task distance; episodes never end early (their length is the Gymnasium
`max_episode_steps`), and `info["success"]` says whether the goal is reached now.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from worldjepa.envs import arm_scene as scene
from worldjepa.envs.base import GoalEnv, check_action
from worldjepa.envs.rendering import OffscreenRenderer
from worldjepa.envs.variations import LIGHT_RANGES, Variation, get_variation
from worldjepa.errors import UserError

#: Largest grasp-point move commanded by one step (an action component of 1), metres.
MAX_STEP = 0.05
#: Physics substeps per env step: 10 x 5 ms, so 20 env steps per simulated second.
SUBSTEPS = 10
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 256
#: Grasp-point height while travelling above the block.
TRAVEL_HEIGHT = 0.12
_SIM_STATE_ARRAYS = ("qpos", "qvel", "act", "ctrl", "mocap_pos", "mocap_quat", "qacc_warmstart")


def _euler_xyz(rotation: np.ndarray) -> np.ndarray:
    """Extrinsic x-y-z Euler angles (roll, pitch, yaw) of a 3x3 rotation matrix."""
    roll = np.arctan2(rotation[2, 1], rotation[2, 2])
    pitch = -np.arcsin(np.clip(rotation[2, 0], -1.0, 1.0))
    yaw = np.arctan2(rotation[1, 0], rotation[0, 0])
    return np.array([roll, pitch, yaw])


def _gripper_control(command: float) -> float:
    """Finger slide target for a gripper command in [-1 (closed), 1 (open)]."""
    return (command + 1.0) / 2.0 * scene.FINGER_TRAVEL


def _toward(current: np.ndarray, target: np.ndarray, gripper: float, speed: float = 1.0) -> np.ndarray:
    """The action that moves the grasp point straight toward `target`, at most `speed` (in action units)."""
    return np.append(np.clip((target - current) / MAX_STEP, -speed, speed), gripper)


class ArmEnv(gym.Env, GoalEnv):
    """A 4-joint arm with a 2-finger gripper at a table, seen by one fixed camera (see module doc)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 1.0 / (SUBSTEPS * scene.TIMESTEP)}
    #: Whether the scene has a block to push or pick up.
    has_block: bool = False
    #: Where a reset puts the block (x, y, metres).
    _block_low = np.array([0.32, -0.15])
    _block_high = np.array([0.5, 0.15])
    #: How far beyond that range `object_state` still reports the block: past it, random motions have
    #: knocked it off the table or out of the picture.
    _block_margin = 0.1
    #: Gripper command the episode starts with and the expert mostly keeps.
    start_gripper: float = 1.0
    success_threshold: float = 0.03

    def __init__(
        self,
        image_size: int = 64,
        variation: str | Variation = "default",
        show_target: bool = False,
        render_mode: str | None = None,
    ) -> None:
        if (
            not isinstance(image_size, (int, np.integer))
            or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE
        ):
            raise UserError(
                f"image_size must be an int in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}], got {image_size!r}"
            )
        if render_mode not in (None, "rgb_array"):
            raise UserError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.variation = get_variation(variation)
        self.image_size = image_size = int(image_size)
        self.render_mode = render_mode
        xml = scene.scene_xml(self.variation, self.has_block, show_target, image_size)
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self._grasp_site = self.model.site("grasp").id
        self._block_qpos = self.model.joint("block").qposadr[0] if self.has_block else None
        self._finger_qpos = [self.model.joint(name).qposadr[0] for name in ("left_finger", "right_finger")]
        self._renderer = OffscreenRenderer(self.model, "front", image_size, image_size)
        self.observation_space = gym.spaces.Dict(
            {
                "pixels": gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
                "state": gym.spaces.Box(-np.inf, np.inf, (7,), np.float32),
            }
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)

    # ----- task hooks -------------------------------------------------------------------------------------
    def _sample_episode(self, rng: np.random.Generator) -> None:
        """Place the arm and objects, and set the goal (`self.goal`), for a new episode."""
        raise NotImplementedError

    def _pose_goal_configuration(self) -> None:
        """Put the sim into this episode's goal configuration (positions only; state is restored after)."""
        raise NotImplementedError

    def _distance(self) -> float:
        """The task's success metric, metres."""
        raise NotImplementedError

    def _expert(self) -> np.ndarray:
        """The scripted controller's noise-free action."""
        raise NotImplementedError

    # ----- shared state accessors -------------------------------------------------------------------------
    @property
    def goal(self) -> np.ndarray:
        """The episode's goal position (the target mocap body, so that sim snapshots carry it)."""
        return self.data.mocap_pos[0].copy()

    @property
    def grasp_point(self) -> np.ndarray:
        return self.data.site_xpos[self._grasp_site].copy()

    @property
    def finger_opening(self) -> float:
        """Distance between the finger pads, metres (the state's last value)."""
        return float(self.proprio_state()[-1])

    @property
    def block_position(self) -> np.ndarray:
        return self.data.qpos[self._block_qpos : self._block_qpos + 3].copy()

    @property
    def object_dim(self) -> int:
        return 4 if self.has_block else 0

    def object_state(self, data: mujoco.MjData | None = None) -> np.ndarray:
        """The block's pose (`block_pose`) in `data` (None: the env's physics); all NaN when the block is
        off the table (`block_on_table`)."""
        if not self.has_block:
            return np.zeros(0, np.float32)
        pose = self.block_pose(self.data if data is None else data)
        return pose if self.block_on_table(pose[:2]) else np.full(4, np.nan, np.float32)

    def block_pose(self, data: mujoco.MjData) -> np.ndarray:
        """The block's x, y and its yaw as cos / sin of 4 yaw (a square block looks alike every quarter
        turn) in `data`."""
        block = data.qpos[self._block_qpos : self._block_qpos + 7]
        yaw = 2.0 * np.arctan2(block[6], block[3])
        return np.float32([block[0], block[1], np.cos(4 * yaw), np.sin(4 * yaw)])

    def block_on_table(self, block_xy: np.ndarray) -> np.ndarray:
        """Whether a block at `block_xy` [..., 2] lies within `_block_margin` of where a reset puts it."""
        low, high = self._block_low - self._block_margin, self._block_high + self._block_margin
        return np.all((block_xy >= low) & (block_xy <= high), axis=-1)

    def _set_block(self, position: np.ndarray, yaw: float) -> None:
        self.data.qpos[self._block_qpos : self._block_qpos + 3] = position
        self.data.qpos[self._block_qpos + 3 : self._block_qpos + 7] = [
            np.cos(yaw / 2),
            0.0,
            0.0,
            np.sin(yaw / 2),
        ]

    def _set_arm(self, grasp_point: np.ndarray, gripper: float) -> None:
        """Place the arm at rest at a grasp point and hold it there (joints and actuator targets)."""
        joints = scene.inverse_kinematics(grasp_point)
        fingers = _gripper_control(gripper)
        self.data.qpos[:4] = joints
        self.data.qpos[self._finger_qpos] = fingers
        self.data.ctrl[:] = [*joints, fingers, fingers]

    def proprio_state(self, data: mujoco.MjData | None = None) -> np.ndarray:
        """The 7-D proprio state (grasp point, hand angles, finger opening) in `data`: the env's physics
        (None) or a copy of it, such as a planner's look-ahead."""
        data = self.data if data is None else data
        rotation = data.site_xmat[self._grasp_site].reshape(3, 3)
        opening = scene.FINGER_MIN_GAP + data.qpos[self._finger_qpos].sum()
        return np.concatenate([data.site_xpos[self._grasp_site], _euler_xyz(rotation), [opening]]).astype(
            np.float32
        )

    def _observation(self) -> dict[str, np.ndarray]:
        return {"pixels": self._renderer.render(self.data), "state": self.proprio_state()}

    def _success(self, distance: float) -> bool:
        """Whether the task is solved now (by default: the distance under the task's threshold)."""
        return distance < self.success_threshold

    def _info(self) -> dict[str, Any]:
        distance = self._distance()
        return {"success": bool(self._success(distance)), "distance": float(distance)}

    # ----- Gymnasium API ----------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self._sample_episode(self.np_random)
        if self.variation.random_lights:
            self._draw_lights(self.np_random)
        mujoco.mj_forward(self.model, self.data)  # also turns the light direction into the world frame
        return self._observation(), self._info()

    def _draw_lights(self, rng: np.random.Generator) -> None:
        """A new light for the episode within `LIGHT_RANGES`, drawn after its layout (same seed, same
        episode, another light)."""
        diffuse, ambient, down = (rng.uniform(*LIGHT_RANGES[key]) for key in ("diffuse", "ambient", "down"))
        heading = rng.uniform(0.0, 2.0 * np.pi)
        across = np.sqrt(1.0 - down**2)
        self.model.light_dir[0] = [across * np.cos(heading), across * np.sin(heading), -down]
        self.model.light_diffuse[0] = diffuse
        self.model.vis.headlight.ambient[:] = ambient

    def step(self, action):
        self.apply_action(check_action(action, self.action_space, "[dx, dy, dz, gripper]"))
        info = self._info()
        return self._observation(), -info["distance"], False, False, info

    def apply_action(self, action: np.ndarray, data: mujoco.MjData | None = None) -> None:
        """Play one env step of a checked `action` in `data`: the env's physics (None) or a copy of it, such
        as a planner's look-ahead."""
        data = self.data if data is None else data
        here = data.site_xpos[self._grasp_site]
        target = np.clip(here + MAX_STEP * action[:3], scene.WORKSPACE_LOW, scene.WORKSPACE_HIGH)
        data.ctrl[:4] = scene.inverse_kinematics(target)
        data.ctrl[4:6] = _gripper_control(action[3])
        mujoco.mj_step(self.model, data, nstep=SUBSTEPS)
        mujoco.mj_forward(self.model, data)  # mj_step leaves positions one substep stale

    def render(self) -> np.ndarray | None:
        return self._renderer.render(self.data) if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        self._renderer.close()

    # ----- GoalEnv ----------------------------------------------------------------------------------------
    def goal_observation(self) -> dict[str, np.ndarray]:
        return self._observation_posed(self._pose_goal_configuration)

    def subgoal_observations(self) -> list[dict[str, np.ndarray]]:
        return [self._observation_posed(pose) for pose in self._subgoal_poses()]

    def _subgoal_poses(self) -> list[Callable[[], None]]:
        """Functions that put the sim into each sub-goal configuration, the goal last."""
        return [self._pose_goal_configuration]

    def _observation_posed(self, pose: Callable[[], None]) -> dict[str, np.ndarray]:
        """The observation of the scene as `pose` arranges it; the episode's state is restored after."""
        snapshot = self.get_sim_state()
        pose()
        mujoco.mj_forward(self.model, self.data)
        observation = self._observation()
        self.set_sim_state(snapshot)
        return observation

    def expert_action(self, rng: np.random.Generator | None = None, noise: float = 0.0) -> np.ndarray:
        action = self._expert()
        if noise > 0.0:
            rng = rng if rng is not None else self.np_random
            action = action + noise * rng.standard_normal(action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def get_sim_state(self) -> dict[str, Any]:
        """Time, joint positions and velocities, actuator state and targets, the goal (`mocap_pos[0]`),
        and the contact solver's warm start, without which a replay drifts in the last digits."""
        state = {key: getattr(self.data, key).copy() for key in _SIM_STATE_ARRAYS}
        return {"time": self.data.time, **state}

    def set_sim_state(self, state: dict[str, Any]) -> None:
        self.data.time = state["time"]
        for key in _SIM_STATE_ARRAYS:
            getattr(self.data, key)[:] = state[key]
        mujoco.mj_forward(self.model, self.data)


class ArmReachEnv(ArmEnv):
    """Bring the grasp point to a target in free space above the table."""

    success_threshold = 0.03
    success_criterion = "the grasp point (between the finger pads) is less than 3 cm from the target position"
    _target_low = np.array([0.28, -0.22, 0.06])
    _target_high = np.array([0.55, 0.22, 0.3])

    def _sample_episode(self, rng: np.random.Generator) -> None:
        start = scene.HOME + rng.uniform(-0.03, 0.03, 3)
        target = rng.uniform(self._target_low, self._target_high)
        while np.linalg.norm(target - start) < 0.1:
            target = rng.uniform(self._target_low, self._target_high)
        self._set_arm(start, self.start_gripper)
        self.data.mocap_pos[0] = target

    def _pose_goal_configuration(self) -> None:
        self._set_arm(self.goal, self.start_gripper)

    def _distance(self) -> float:
        return float(np.linalg.norm(self.grasp_point - self.goal))

    def _expert(self) -> np.ndarray:
        return _toward(self.grasp_point, self.goal, self.start_gripper)


class ArmPushEnv(ArmEnv):
    """Push a block across the table to a target spot with the closed gripper."""

    has_block = True
    start_gripper = -1.0
    success_threshold = 0.04
    success_criterion = "the block's centre is less than 4 cm from the target on the table (planar distance)"
    _target_low = np.array([0.28, -0.22])
    _target_high = np.array([0.55, 0.22])
    #: Grasp point to block centre when the closed fingers touch the block's back face.
    _contact = scene.BLOCK_HALF + 0.015
    #: Grasp-point height while pushing: the fingertips just above the table.
    _push_height = 0.03
    #: Gap between the fingers and the block before a push and when backing off after it.
    _clearance = 0.03
    #: Visual sub-goals along the push (the last one with the block on the target).
    push_waypoints = 3
    #: How far a pushed block slides ahead of the hand: the push sub-goals stop the hand that much short.
    _slide = 0.02

    def _sample_episode(self, rng: np.random.Generator) -> None:
        while True:
            block = rng.uniform(self._block_low, self._block_high)
            angle, length = rng.uniform(-np.pi, np.pi), rng.uniform(0.1, 0.2)
            target = block + length * np.array([np.cos(angle), np.sin(angle)])
            behind = block - (self._contact + 0.05) * np.array([np.cos(angle), np.sin(angle)])
            if (
                np.all(target >= self._target_low)
                and np.all(target <= self._target_high)
                and np.all(behind >= scene.WORKSPACE_LOW[:2])
                and np.all(behind <= scene.WORKSPACE_HIGH[:2])
            ):
                break
        self._set_arm(scene.HOME, self.start_gripper)
        self._set_block(np.append(block, scene.BLOCK_HALF), rng.uniform(-np.pi / 4, np.pi / 4))
        self.data.mocap_pos[0] = np.append(target, scene.BLOCK_HALF)

    def _pose_goal_configuration(self) -> None:
        self._set_arm(scene.HOME, self.start_gripper)
        self.data.qpos[self._block_qpos : self._block_qpos + 3] = self.goal

    def _distance(self) -> float:
        return float(np.linalg.norm(self.block_position[:2] - self.goal[:2]))

    def _subgoal_poses(self) -> list[Callable[[], None]]:
        """The expert's way-points: the closed hand above the spot behind the block (on the line from
        the block to the target), lowered there, `push_waypoints` points along the push (the block a
        third, two thirds... of the way to the target, the hand just behind it: `_slide` short of
        touching, since a pushed block slides on ahead of the hand), the hand backed off and lifted,
        then the goal (the hand back home; straight there from the block, it drags the block off the
        target). Points along the push keep the hand on the line: toward the far end alone a planner
        cuts the corner (a box-bounded step moves diagonally) and pushes the block off course."""
        block, target = self.block_position[:2], self.goal[:2]
        direction = (target - block) / np.linalg.norm(target - block)
        behind = block - direction * (self._contact + self._clearance)
        poses = [
            partial(self._pose_hand_and_block, np.append(behind, TRAVEL_HEIGHT), block),
            partial(self._pose_hand_and_block, np.append(behind, self._push_height), block),
        ]
        for fraction in np.arange(1, self.push_waypoints + 1) / self.push_waypoints:
            pushed = block + fraction * (target - block)
            hand = np.append(pushed - direction * (self._contact + self._slide), self._push_height)
            poses.append(partial(self._pose_hand_and_block, hand, pushed))
        lifted = np.append(target - direction * (self._contact + self._clearance), TRAVEL_HEIGHT)
        poses.append(partial(self._pose_hand_and_block, lifted, target))
        return [*poses, self._pose_goal_configuration]

    def _pose_hand_and_block(self, hand: np.ndarray, block_xy: np.ndarray) -> None:
        self._set_arm(hand, self.start_gripper)
        self.data.qpos[self._block_qpos : self._block_qpos + 2] = block_xy

    def _expert(self) -> np.ndarray:
        """Stateless pusher: get behind the block on the block-target line, lower the fingers, push
        along the line; when done, go home. Travel happens high, after backing off from the block,
        so that the fingers never drag or knock it."""
        hand, block, goal = self.grasp_point, self.block_position[:2], self.goal[:2]
        offset = hand[:2] - block
        low = hand[2] < self._push_height + 0.015
        to_goal = goal - block
        distance = np.linalg.norm(to_goal)
        destination = scene.HOME
        if distance >= 0.5 * self.success_threshold:
            direction = to_goal / distance
            side = np.array([-direction[1], direction[0]])
            if low and offset @ direction < -(self._contact - 0.01) and abs(offset @ side) < 0.025:
                aim = block + direction * (min(distance, 0.02) - self._contact)
                speed = 0.3 if distance > 0.05 else 0.15  # gentle, so the block does not slide past
                return _toward(hand, np.append(aim, self._push_height), self.start_gripper, speed)
            start = block - direction * (self._contact + self._clearance)
            if np.linalg.norm(hand[:2] - start) < 0.02:
                return _toward(hand, np.append(start, self._push_height), self.start_gripper)
            destination = np.append(start, TRAVEL_HEIGHT)
        if low and np.linalg.norm(offset) < self._contact + 0.02:
            away = block + offset / np.linalg.norm(offset) * (self._contact + self._clearance)
            return _toward(hand, np.append(away, hand[2]), self.start_gripper, speed=0.5)
        if hand[2] < 0.9 * TRAVEL_HEIGHT and np.linalg.norm(offset) < 0.12:
            return _toward(hand, np.append(hand[:2], TRAVEL_HEIGHT), self.start_gripper)
        return _toward(hand, destination, self.start_gripper)


class ArmGraspEnv(ArmEnv):
    """Grasp the block from the table and hold it lifted (the goal: the block held 8 cm up)."""

    has_block = True
    success_threshold = 0.03
    success_criterion = "the block is held at least 5 cm above where it rested on the table"
    #: How high the goal holds the block above its resting place (success: within 3 cm of that height).
    lift = 0.08
    #: Finger slide at which the pads touch the block.
    _holding = scene.BLOCK_HALF - scene.FINGER_MIN_GAP / 2

    def _sample_episode(self, rng: np.random.Generator) -> None:
        block = rng.uniform(self._block_low, self._block_high)
        self._set_arm(scene.HOME, self.start_gripper)
        # Face the gripper (whose fingers close across the arm's plane) with a small random twist.
        yaw = np.arctan2(block[1], block[0]) + rng.uniform(-0.2, 0.2)
        self._set_block(np.append(block, scene.BLOCK_HALF), yaw)
        self.data.mocap_pos[0] = self._sample_target(rng, block)

    def _sample_target(self, rng: np.random.Generator, block_xy: np.ndarray) -> np.ndarray:
        """The goal position of the block's centre."""
        return np.append(block_xy, scene.BLOCK_HALF + self.lift)

    def _pose_goal_configuration(self) -> None:
        self._pose_holding(self.goal)

    def _distance(self) -> float:
        """How far the block is below the goal height (0 at or above it)."""
        return max(0.0, float(self.goal[2] - self.block_position[2]))

    def _subgoal_poses(self) -> list[Callable[[], None]]:
        """The grasp's key poses (the open hand above the block, lowered around it, closed on it), then
        the goal (the block lifted)."""
        return [*self._grasp_poses(), self._pose_goal_configuration]

    def _grasp_poses(self) -> list[Callable[[], None]]:
        block = self.block_position
        above = np.append(block[:2], TRAVEL_HEIGHT)
        return [
            partial(self._set_arm, above, 1.0),
            partial(self._set_arm, block, 1.0),
            partial(self._pose_holding, block),
        ]

    def _pose_holding(self, position: np.ndarray) -> None:
        """The closed hand holding the block at `position`, the block turned square to the fingers."""
        self._set_arm(position, -1.0)
        self.data.qpos[self._finger_qpos] = self._holding
        self._set_block(position, np.arctan2(position[1], position[0]))

    def _holds_block(self) -> bool:
        """Whether the fingers are closed on the block (stopped by it, the block between them)."""
        closed_on_block = abs(self.data.qpos[self._finger_qpos].sum() - 2 * self._holding) < 0.008
        return closed_on_block and np.linalg.norm(self.grasp_point - self.block_position) < 0.035

    def _expert(self) -> np.ndarray:
        """Grasp, then carry the block to the goal."""
        if self._holds_block():
            return _toward(self.grasp_point, self.goal, -1.0, speed=0.5)
        return self._grasp_action()

    def _grasp_action(self) -> np.ndarray:
        """Stateless grasp: above the block with the gripper open, down, close; if the block slips out,
        open and start over."""
        hand, block = self.grasp_point, self.block_position
        if np.linalg.norm(hand - block) < 0.02:
            return _toward(hand, hand, -1.0)
        beside = np.linalg.norm(hand[:2] - block[:2])
        if beside < 0.015:
            return _toward(hand, block, 1.0)
        if hand[2] < block[2] + 0.06 and beside < 0.08:  # low and close: rise first, not to knock it
            return _toward(hand, np.append(hand[:2], TRAVEL_HEIGHT), 1.0)
        return _toward(hand, np.append(block[:2], max(TRAVEL_HEIGHT, block[2] + 0.08)), 1.0)


class ArmPickPlaceEnv(ArmGraspEnv):
    """Grasp the block, carry it to a target spot on the table and let go of it."""

    success_threshold = 0.04
    success_criterion = (
        "the block rests within 4 cm of the target spot on the table and the gripper has let go of it"
    )
    _target_low = np.array([0.3, -0.2])
    _target_high = np.array([0.52, 0.2])
    #: Finger opening (metres between the pads) above which the block counts as released.
    released_opening = 2 * scene.BLOCK_HALF + 0.01

    def _sample_target(self, rng: np.random.Generator, block_xy: np.ndarray) -> np.ndarray:
        target = rng.uniform(self._target_low, self._target_high)
        while np.linalg.norm(target - block_xy) < 0.1:
            target = rng.uniform(self._target_low, self._target_high)
        return np.append(target, scene.BLOCK_HALF)

    def _pose_goal_configuration(self) -> None:
        self._set_arm(scene.HOME, 1.0)
        self._set_block(self.goal, np.arctan2(self.goal[1], self.goal[0]))

    def _distance(self) -> float:
        return float(np.linalg.norm(self.block_position - self.goal))

    def _success(self, distance: float) -> bool:
        return distance < self.success_threshold and self._released()

    def _released(self) -> bool:
        return self.finger_opening > self.released_opening

    def _subgoal_poses(self) -> list[Callable[[], None]]:
        """The grasp's key poses, the block lifted, carried above the target, set down there, let go
        of, the open hand raised, then the goal (the hand back home)."""
        block, target = self.block_position, self.goal
        lifted, carried = np.append(block[:2], TRAVEL_HEIGHT), np.append(target[:2], TRAVEL_HEIGHT)
        return [
            *self._grasp_poses(),
            partial(self._pose_holding, lifted),
            partial(self._pose_holding, carried),
            partial(self._pose_holding, target),
            partial(self._pose_released, target, target),
            partial(self._pose_released, carried, target),
            self._pose_goal_configuration,
        ]

    def _pose_released(self, hand: np.ndarray, block: np.ndarray) -> None:
        self._set_arm(hand, 1.0)
        self._set_block(block, np.arctan2(block[1], block[0]))

    def _expert(self) -> np.ndarray:
        """Grasp, carry the block high to above the target, lower it onto the table, open, rise, go home."""
        hand, block, target = self.grasp_point, self.block_position, self.goal
        to_target = target - block  # the hand moves the block by its own moves, wherever it holds it
        placed = np.linalg.norm(to_target[:2]) < 0.02 and block[2] < scene.BLOCK_HALF + 0.01
        if placed:
            if not self._released():
                return _toward(hand, hand, 1.0)
            if hand[2] < 0.9 * TRAVEL_HEIGHT and np.linalg.norm(hand[:2] - block[:2]) < 0.08:
                return _toward(hand, np.append(hand[:2], TRAVEL_HEIGHT), 1.0)
            return _toward(hand, scene.HOME, 1.0)
        if self._holds_block():
            if np.linalg.norm(to_target[:2]) > 0.015:
                if block[2] < TRAVEL_HEIGHT - 0.03:  # lift it clear of the table first
                    return _toward(hand, np.append(hand[:2], TRAVEL_HEIGHT), -1.0, speed=0.5)
                return _toward(hand, np.append(hand[:2] + to_target[:2], TRAVEL_HEIGHT), -1.0, speed=0.5)
            return _toward(hand, hand + to_target, -1.0, speed=0.5)
        return self._grasp_action()
