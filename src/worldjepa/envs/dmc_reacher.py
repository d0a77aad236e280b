"""DeepMind Control reacher from pixels, as a goal-image reaching task (the DINO-WM / LeWM / PLDM
benchmark).

We use dm_control's suite model and its episode initialisation (random joints, target at radius
0.05-0.20 m) and draw the top-down `fixed` camera ourselves (no shadows or skybox, see `rendering`).
Defaults follow stable-worldmodel's reacher, the evaluation harness of LeWM (which compares against
DINO-WM and PLDM): the `hard` task's 0.015 m target, action repeat 2, and the `qpos_match` success.

Goal: the joint configuration whose fingertip sits on the target (two-link inverse kinematics, elbow
side drawn per episode); the goal image is the arm rendered in that pose. Success: every joint within
0.05 rad of the goal pose (stable-worldmodel's `qpos_match` tolerance). We compare the shoulder angle
modulo 2 pi, because the shoulder is unlimited and a full turn is the same image (the wrist is limited
to +-160 degrees, so it never wraps).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from worldjepa.envs.base import GoalEnv, check_action
from worldjepa.envs.rendering import OffscreenRenderer, gl_backend
from worldjepa.errors import UserError

TARGET_SIZES = {"easy": 0.05, "hard": 0.015}  # dm_control's _BIG_TARGET and _SMALL_TARGET
QPOS_TOLERANCE = 0.05


def _wrap(angle: float) -> float:
    return (angle + np.pi) % (2 * np.pi) - np.pi


class DMCReacherEnv(gym.Env, GoalEnv):
    """Two-link planar arm; 2-D torques in [-1, 1]; state = [qpos (2), qvel (2)]."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}
    success_criterion = "both joints within 0.05 rad of the goal pose (fingertip on the target)"

    def __init__(self, task: str = "hard", image_size: int = 64, action_repeat: int = 2):
        if task not in TARGET_SIZES:
            raise UserError(f"reacher task must be one of {sorted(TARGET_SIZES)}, got {task!r}")
        gl_backend()  # settles MUJOCO_GL before dm_control imports its renderer
        from dm_control.suite import reacher

        self._suite = reacher
        self.task = task
        self.image_size = int(image_size)
        self.action_repeat = int(action_repeat)
        self.render_mode = "rgb_array"
        self.physics = reacher.Physics.from_xml_string(*reacher.get_model_and_assets())
        self._links = (
            float(self.physics.named.model.body_pos["hand", "x"]),
            float(self.physics.named.model.body_pos["finger", "x"]),
        )
        self._renderer = OffscreenRenderer(self.physics.model.ptr, "fixed", self.image_size, self.image_size)
        s = self.image_size
        self.observation_space = gym.spaces.Dict(
            pixels=gym.spaces.Box(0, 255, (s, s, 3), np.uint8),
            state=gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._goal_qpos = np.zeros(2)

    # ---- kinematics -----------------------------------------------------------------------------------

    def _goal_pose(self, target: np.ndarray, elbow: float) -> np.ndarray:
        """Joint angles that put the fingertip on `target` (x, y); `elbow` = +1 or -1 picks the side."""
        l1, l2 = self._links
        cos_wrist = (target @ target - l1**2 - l2**2) / (2 * l1 * l2)
        wrist = elbow * np.arccos(np.clip(cos_wrist, -1.0, 1.0))
        shoulder = np.arctan2(target[1], target[0]) - np.arctan2(l2 * np.sin(wrist), l1 + l2 * np.cos(wrist))
        return np.array([_wrap(shoulder), wrist])

    def _joint_error(self) -> np.ndarray:
        """Goal minus current pose; the shoulder the shortest way round, the limited wrist as is."""
        error = self._goal_qpos - self.physics.data.qpos
        error[0] = _wrap(error[0])
        return error

    # ---- gymnasium API --------------------------------------------------------------------------------

    def _observation(self) -> dict[str, np.ndarray]:
        state = np.concatenate([self.physics.data.qpos, self.physics.data.qvel]).astype(np.float32)
        return {"pixels": self._renderer.render(self.physics.data.ptr), "state": state}

    def _info(self) -> dict[str, Any]:
        distance = float(np.abs(self._joint_error()).max())
        fingertip = float(self.physics.finger_to_target_dist())
        return {"distance": distance, "success": distance < QPOS_TOLERANCE, "fingertip_distance": fingertip}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        episode_random = np.random.RandomState(int(self.np_random.integers(2**31)))
        task = self._suite.Reacher(target_size=TARGET_SIZES[self.task], random=episode_random)
        with self.physics.reset_context():
            task.initialize_episode(self.physics)
        target = np.array(self.physics.named.model.geom_pos["target", :2])
        self._goal_qpos = self._goal_pose(target, elbow=float(self.np_random.choice([-1.0, 1.0])))
        return self._observation(), self._info()

    def step(self, action):
        action = check_action(action, self.action_space)
        self.physics.set_control(action)
        for _ in range(self.action_repeat):
            self.physics.step()
        return self._observation(), 0.0, False, False, self._info()

    def render(self) -> np.ndarray:
        return self._renderer.render(self.physics.data.ptr)

    def close(self) -> None:
        self._renderer.close()

    # ---- GoalEnv --------------------------------------------------------------------------------------

    def goal_observation(self) -> dict[str, np.ndarray]:
        saved = self.get_sim_state()
        with self.physics.reset_context():
            self.physics.data.qpos[:] = self._goal_qpos
            self.physics.data.qvel[:] = 0.0
        goal = self._observation()
        self.set_sim_state(saved)
        return goal

    def expert_action(self, rng: np.random.Generator | None = None, noise: float = 0.0) -> np.ndarray:
        """Joint-space PD toward the goal pose; the small damping gain keeps it stable at action repeat 2."""
        torque = 3.0 * self._joint_error() - 0.15 * self.physics.data.qvel
        if noise > 0:
            torque = torque + (rng if rng is not None else self.np_random).normal(0.0, noise, 2)
        return np.clip(torque, -1.0, 1.0).astype(np.float32)

    def get_sim_state(self) -> dict[str, Any]:
        return {
            "physics": self.physics.get_state().copy(),
            "target": np.array(self.physics.named.model.geom_pos["target"]),
            "target_size": float(self.physics.named.model.geom_size["target", 0]),
            "goal_qpos": self._goal_qpos.copy(),
        }

    def set_sim_state(self, state: dict[str, Any]) -> None:
        with self.physics.reset_context():
            self.physics.set_state(state["physics"])
            self.physics.named.model.geom_pos["target"] = state["target"]
            self.physics.named.model.geom_size["target", 0] = state["target_size"]
        self._goal_qpos = np.array(state["goal_qpos"])
