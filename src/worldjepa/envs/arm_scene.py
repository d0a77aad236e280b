"""The tabletop arm scene: our MJCF, written from primitives, and the arm's inverse kinematics.

The arm has 4 revolute joints (base yaw, shoulder, elbow and wrist pitch) and a 2-finger gripper on
slide joints. Four joints are exactly enough to place the grasp point anywhere in the workspace with
the gripper pointing straight down, which makes the inverse kinematics closed-form (no iterative
solver, nothing to diverge) and keeps the simulation small and fast. The table top is the plane
z = 0 and the arm's base stands at the origin; all lengths are metres.
"""

from __future__ import annotations

import numpy as np

from worldjepa.envs.variations import Variation

#: Physics timestep, seconds. Joint order in qpos: yaw, shoulder, elbow, wrist, the two fingers, then
#: the block's free joint (when the task has a block); actuators follow the same order.
TIMESTEP = 0.005
SHOULDER_HEIGHT = 0.16
UPPER_ARM = 0.34
FOREARM = 0.34
#: From the wrist joint to the grasp point (the centre between the finger pads).
HAND = 0.12
FINGER_HALF_LENGTH = 0.025
FINGER_HALF_THICKNESS = 0.008
#: Each finger slides from 0 (closed) to FINGER_TRAVEL; the pads are then 4 mm + 2 * travel apart.
FINGER_TRAVEL = 0.04
FINGER_MIN_GAP = 0.004
BLOCK_HALF = 0.03

#: Bounds of the commanded grasp point; every point inside is reachable with the gripper down.
WORKSPACE_LOW = np.array([0.2, -0.35, 0.03])
WORKSPACE_HIGH = np.array([0.65, 0.35, 0.4])
#: Where the arm rests between tasks: high, near the base, out of the way of the objects.
HOME = np.array([0.3, 0.0, 0.22])

CAMERA_POSITION = np.array([0.85, 0.42, 0.78])
CAMERA_TARGET = np.array([0.24, 0.0, 0.16])
CAMERA_FOVY = 50.0


def inverse_kinematics(grasp_point: np.ndarray) -> np.ndarray:
    """Joint angles [yaw, shoulder, elbow, wrist] that put the grasp point at `grasp_point` with the
    gripper pointing down (elbow up). Pitch angles are measured from the vertical."""
    x, y, z = grasp_point
    yaw = np.arctan2(y, x)
    radius = np.hypot(x, y)
    height = z + HAND - SHOULDER_HEIGHT  # the wrist sits HAND above the grasp point
    reach_sq = np.clip(
        radius**2 + height**2, (UPPER_ARM - FOREARM) ** 2 + 1e-6, (UPPER_ARM + FOREARM) ** 2 - 1e-6
    )
    cos_elbow = (reach_sq - UPPER_ARM**2 - FOREARM**2) / (2 * UPPER_ARM * FOREARM)
    elbow = np.arccos(np.clip(cos_elbow, -1.0, 1.0))
    shoulder = np.arctan2(radius, height) - np.arctan2(
        FOREARM * np.sin(elbow), UPPER_ARM + FOREARM * np.cos(elbow)
    )
    wrist = np.pi - shoulder - elbow
    return np.array([yaw, shoulder, elbow, wrist])


def _rgba(values: tuple[float, ...]) -> str:
    return " ".join(f"{v:g}" for v in values)


def _look_at_axes(position: np.ndarray, target: np.ndarray) -> str:
    """MJCF `xyaxes` of a camera at `position` looking at `target` with the world z up."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return " ".join(f"{v:.5f}" for v in (*right, *up))


def _arm_xml(arm_rgba: str) -> str:
    """The arm's kinematic chain. Only the hand and fingers collide (with the table and the block):
    the links stay above the table inside the workspace, and fewer contact pairs keep stepping fast."""
    link = f'contype="0" conaffinity="0" rgba="{arm_rgba}"'
    finger = (
        f'type="box" size="0.012 {FINGER_HALF_THICKNESS} {FINGER_HALF_LENGTH}" friction="1.5 0.01 0.001" '
        'rgba="0.25 0.25 0.28 1"'
    )
    offset = FINGER_MIN_GAP / 2 + FINGER_HALF_THICKNESS
    return f"""
    <body name="base" pos="0 0 0" gravcomp="1">
      <geom type="cylinder" size="0.07 0.02" pos="0 0 0.02" {link}/>
      <joint name="yaw" axis="0 0 1" range="-3.14 3.14"/>
      <geom type="cylinder" size="0.045 {SHOULDER_HEIGHT / 2}" pos="0 0 {SHOULDER_HEIGHT / 2}" {link}/>
      <body name="upper_arm" pos="0 0 {SHOULDER_HEIGHT}" gravcomp="1">
        <joint name="shoulder" axis="0 1 0" range="-1.6 1.8"/>
        <geom type="capsule" fromto="0 0 0 0 0 {UPPER_ARM}" size="0.03" {link}/>
        <body name="forearm" pos="0 0 {UPPER_ARM}" gravcomp="1">
          <joint name="elbow" axis="0 1 0" range="-0.2 2.9"/>
          <geom type="capsule" fromto="0 0 0 0 0 {FOREARM}" size="0.025" {link}/>
          <body name="hand" pos="0 0 {FOREARM}" gravcomp="1">
            <joint name="wrist" axis="0 1 0" range="-0.5 3.2"/>
            <geom type="capsule" fromto="0 0 0 0 0 0.05" size="0.02" {link}/>
            <geom type="box" size="0.02 0.05 0.015" pos="0 0 0.07" rgba="0.25 0.25 0.28 1"/>
            <site name="grasp" pos="0 0 {HAND}" quat="0 0 1 0" size="0.005" rgba="0 0 0 0"/>
            <body name="left_finger" pos="0 {offset} {HAND}" gravcomp="1">
              <joint name="left_finger" type="slide" axis="0 1 0" range="0 {FINGER_TRAVEL}"/>
              <geom {finger}/>
            </body>
            <body name="right_finger" pos="0 {-offset} {HAND}" gravcomp="1">
              <joint name="right_finger" type="slide" axis="0 -1 0" range="0 {FINGER_TRAVEL}"/>
              <geom {finger}/>
            </body>
          </body>
        </body>
      </body>
    </body>"""


def scene_xml(variation: Variation, with_block: bool, show_target: bool, image_size: int) -> str:
    """The complete MJCF of the arm world for one task and one variation."""
    v = variation
    if v.table_checker_rgba is None:
        table_look = f'rgba="{_rgba(v.table_rgba)}"'
        assets = ""
    else:
        table_look = 'material="table"'
        assets = f"""
  <asset>
    <texture name="table" type="2d" builtin="checker" width="64" height="64"
             rgb1="{_rgba(v.table_rgba[:3])}" rgb2="{_rgba(v.table_checker_rgba[:3])}"/>
    <material name="table" texture="table" texrepeat="6 6"/>
  </asset>"""
    camera_position = CAMERA_POSITION + np.asarray(v.camera_shift)
    block = ""
    if with_block:
        block = f"""
    <body name="block" pos="0.4 0 {BLOCK_HALF}">
      <freejoint name="block"/>
      <geom type="box" size="{BLOCK_HALF} {BLOCK_HALF} {BLOCK_HALF}" mass="0.1" friction="0.5 0.01 0.001"
            rgba="{_rgba(v.block_rgba)}"/>
    </body>"""
    target_geom = (
        '<geom type="sphere" size="0.015" contype="0" conaffinity="0" rgba="0.1 0.9 0.1 0.6"/>'
        if show_target
        else ""
    )
    distractors = "".join(
        f'\n    <geom type="box" pos="{_rgba(d.position)}" size="{_rgba(d.half_size)}" rgba="{_rgba(d.rgba)}" '
        'contype="0" conaffinity="0"/>'
        for d in v.distractors
    )
    ambient = _rgba((v.ambient,) * 3)
    return f"""<mujoco model="worldjepa_arm">
  <compiler angle="radian"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <global offwidth="{image_size}" offheight="{image_size}"/>
    <quality shadowsize="0" offsamples="0" numslices="12" numstacks="4"/>
    <headlight ambient="{ambient}" diffuse="0.2 0.2 0.2" specular="0 0 0"/>
  </visual>
  <default>
    <joint damping="1" armature="0.05"/>
    <geom contype="1" conaffinity="1" solref="0.02 1"/>
  </default>{assets}
  <worldbody>
    <light directional="true" castshadow="false" pos="0 0 2" dir="{_rgba(v.light_direction)}"
           diffuse="{_rgba((v.light_diffuse,) * 3)}" specular="0.1 0.1 0.1"/>
    <camera name="front" pos="{_rgba(camera_position)}" xyaxes="{_look_at_axes(camera_position, CAMERA_TARGET)}"
            fovy="{CAMERA_FOVY}"/>
    <geom name="table" type="box" pos="0.3 0 -0.02" size="0.45 0.6 0.02" friction="0.5 0.01 0.001" {table_look}/>
    <geom name="floor" type="box" pos="0 0 -0.62" size="8 8 0.02" rgba="0.35 0.37 0.4 1"/>
    <body name="target" mocap="true" pos="0.4 0 0.1">{target_geom}</body>{distractors}{_arm_xml(_rgba(v.arm_rgba))}{block}
  </worldbody>
  <actuator>
    <position name="yaw" joint="yaw" kp="600" dampratio="1"/>
    <position name="shoulder" joint="shoulder" kp="1200" dampratio="1"/>
    <position name="elbow" joint="elbow" kp="800" dampratio="1"/>
    <position name="wrist" joint="wrist" kp="300" dampratio="1"/>
    <position name="left_finger" joint="left_finger" kp="300" dampratio="1" ctrlrange="0 {FINGER_TRAVEL}"/>
    <position name="right_finger" joint="right_finger" kp="300" dampratio="1" ctrlrange="0 {FINGER_TRAVEL}"/>
  </actuator>
</mujoco>
"""
