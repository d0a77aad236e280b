"""The simulated arm world: Gymnasium contract, determinism, bad input, solvability, goal images,
sim snapshots, variations and the rendering set-up."""

from __future__ import annotations

import numpy as np
import pytest

from worldjepa.envs import rendering
from worldjepa.envs.registry import ENVS, make
from worldjepa.envs.variations import LIGHT_RANGES, PRESETS, TRAINING_LOOKS
from worldjepa.errors import UserError

ARM_IDS = [
    "worldjepa/ArmReach-v0",
    "worldjepa/ArmPush-v0",
    "worldjepa/ArmGrasp-v0",
    "worldjepa/ArmPickPlace-v0",
]


def rollout(env, seed: int, steps: int, noise: float = 0.3) -> list[dict[str, np.ndarray]]:
    """Observations of a noisy expert episode; the noise comes from its own seeded generator."""
    rng = np.random.default_rng(seed)
    observations = [env.reset(seed=seed)[0]]
    for _ in range(steps):
        observations.append(env.step(env.unwrapped.expert_action(rng, noise))[0])
    return observations


def expert_success_rate(env, seeds: range) -> float:
    successes = []
    for seed in seeds:
        env.reset(seed=seed)
        truncated = False
        while not truncated:
            _, _, _, truncated, info = env.step(env.unwrapped.expert_action())
        successes.append(info["success"])
    return float(np.mean(successes))


def pixel_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


@pytest.mark.parametrize("env_id", ARM_IDS)
def test_spaces_and_info_follow_the_contract(env_id):
    env = make(env_id)
    observation, info = env.reset(seed=0)
    assert env.observation_space.contains(observation)
    assert observation["pixels"].shape == (64, 64, 3) and observation["pixels"].dtype == np.uint8
    assert observation["state"].shape == (7,) and observation["state"].dtype == np.float32
    assert env.action_space.shape == (4,)
    assert set(info) >= {"success", "distance"} and isinstance(info["success"], bool)
    assert env.unwrapped.success_criterion
    observation, _, _, _, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(observation) and isinstance(info["distance"], float)
    env.close()


def test_gripper_points_down_so_euler_angles_stay_small():
    env = make("worldjepa/ArmPush-v0")
    for observation in rollout(env, seed=3, steps=30):
        assert np.all(np.abs(observation["state"][3:5]) < 0.3)  # roll, pitch


def test_image_size_and_episode_length_are_configurable():
    env = make("worldjepa/ArmReach-v0", image_size=128, max_episode_steps=3)
    observation, _ = env.reset(seed=0)
    assert observation["pixels"].shape == (128, 128, 3)
    truncated = [env.step(np.zeros(4))[3] for _ in range(3)]
    assert truncated == [False, False, True]
    with pytest.raises(UserError, match="image_size"):
        make("worldjepa/ArmReach-v0", image_size=1000)


@pytest.mark.parametrize("env_id", ["worldjepa/ArmReach-v0", "worldjepa/ArmPush-v0"])
def test_same_seed_same_episode_different_seed_different_episode(env_id):
    env_a, env_b = make(env_id), make(env_id)
    run_a, run_b = rollout(env_a, seed=7, steps=15), rollout(env_b, seed=7, steps=15)
    for obs_a, obs_b in zip(run_a, run_b, strict=True):
        np.testing.assert_array_equal(obs_a["pixels"], obs_b["pixels"])
        np.testing.assert_array_equal(obs_a["state"], obs_b["state"])
    other = rollout(env_b, seed=8, steps=0)[0]
    assert not np.array_equal(other["pixels"], run_a[0]["pixels"])
    np.testing.assert_array_equal(env_a.reset(seed=7)[0]["pixels"], run_a[0]["pixels"])  # reset is a restart


def test_out_of_bound_actions_are_clipped():
    env = make("worldjepa/ArmReach-v0")
    env.reset(seed=1)
    clipped = env.step(np.array([1.0, -1.0, 1.0, -1.0]))[0]
    env.reset(seed=1)
    large = env.step(np.array([50.0, -7.0, 3.0, -2.0]))[0]
    np.testing.assert_array_equal(clipped["state"], large["state"])
    env.reset(seed=1)
    start = env.unwrapped.grasp_point
    env.step(np.array([1.0, 0.0, 0.0, 1.0]))
    assert 0.005 < env.unwrapped.grasp_point[0] - start[0] <= 0.05 + 1e-3  # at most MAX_STEP per step


@pytest.mark.parametrize(
    "action, message",
    [
        (np.zeros(3), "shape"),
        (np.zeros((1, 4)), "shape"),
        ([0.0, np.nan, 0.0, 0.0], "finite"),
        ([np.inf, 0.0, 0.0, 0.0], "finite"),
    ],
)
def test_bad_actions_raise_user_error(action, message):
    env = make("worldjepa/ArmReach-v0")
    env.reset(seed=0)
    with pytest.raises(UserError, match=message):
        env.step(action)


@pytest.mark.parametrize("env_id", ARM_IDS)
def test_scripted_expert_solves_the_task(env_id):
    assert expert_success_rate(make(env_id), range(20)) >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ARM_IDS)
def test_scripted_expert_solves_the_task_on_many_seeds(env_id):
    assert expert_success_rate(make(env_id), range(20, 120)) >= 0.95


@pytest.mark.parametrize("env_id", ARM_IDS)
def test_goal_image_shows_the_solved_scene(env_id):
    env = make(env_id)
    start = env.reset(seed=2)[0]
    goal = env.unwrapped.goal_observation()
    truncated = False
    while not truncated:
        final, _, _, truncated, info = env.step(env.unwrapped.expert_action())
    assert info["success"]
    assert pixel_distance(final["pixels"], goal["pixels"]) < 0.5 * pixel_distance(
        start["pixels"], goal["pixels"]
    )


def test_goal_observation_leaves_the_episode_untouched():
    env = make("worldjepa/ArmPush-v0")
    env.reset(seed=4)
    for _ in range(5):
        env.step(env.unwrapped.expert_action())
    before = env.unwrapped.get_sim_state()
    frame = env.unwrapped.render()  # render_mode None
    env.unwrapped.goal_observation()
    after = env.unwrapped.get_sim_state()
    assert frame is None
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])


def test_push_subgoals_are_the_experts_way_points_and_end_with_the_goal():
    env = make("worldjepa/ArmPush-v0")
    env.reset(seed=4)
    before = env.unwrapped.get_sim_state()
    subgoals = env.unwrapped.subgoal_observations()
    for key, value in env.unwrapped.get_sim_state().items():
        np.testing.assert_array_equal(before[key], value)
    pushes = env.unwrapped.push_waypoints
    assert len(subgoals) == 4 + pushes
    np.testing.assert_array_equal(subgoals[-1]["pixels"], env.unwrapped.goal_observation()["pixels"])
    hands = np.stack([g["state"][:3] for g in subgoals[:-1]])
    assert hands[0, 2] > 0.1 and hands[1, 2] < 0.05  # above the spot behind the block, then lowered
    steps = np.diff(hands[1 : 2 + pushes, :2], axis=0)  # along the push, on one line, evenly spaced
    direction = steps[-1] / np.linalg.norm(steps[-1])
    np.testing.assert_allclose(steps @ np.array([-direction[1], direction[0]]), 0, atol=1e-5)
    np.testing.assert_allclose(steps[1:], np.broadcast_to(steps[-1], steps[1:].shape), atol=1e-5)
    assert hands[-1, 2] > 0.1 and (hands[-1, :2] - hands[-2, :2]) @ direction < 0  # backed off, lifted
    path = []
    for _ in range(40):
        path.append(env.step(env.unwrapped.expert_action())[0]["state"][:3])
    gaps = np.linalg.norm(np.stack(path)[:, None] - hands[None], axis=-1).min(0)
    assert np.all(gaps < 0.03), gaps  # the scripted expert passes every way-point
    reach = make("worldjepa/ArmReach-v0")
    reach.reset(seed=4)
    (only,) = reach.unwrapped.subgoal_observations()  # a one-stage task: the goal alone
    np.testing.assert_array_equal(only["pixels"], reach.unwrapped.goal_observation()["pixels"])


@pytest.mark.parametrize("env_id, stages", [("worldjepa/ArmGrasp-v0", 4), ("worldjepa/ArmPickPlace-v0", 9)])
def test_grasp_subgoals_are_the_experts_way_points_with_the_gripper_and_end_with_the_goal(env_id, stages):
    env = make(env_id)
    env.reset(seed=6)
    subgoals = env.unwrapped.subgoal_observations()
    assert len(subgoals) == stages
    np.testing.assert_array_equal(subgoals[-1]["pixels"], env.unwrapped.goal_observation()["pixels"])
    states = np.stack([g["state"] for g in subgoals])
    open_, holding = states[0, 6], states[2, 6]
    assert open_ > 0.08 and abs(holding - 0.06) < 0.002  # open above the block; closed on its 6 cm
    np.testing.assert_allclose(states[1, :3], states[2, :3], atol=1e-6)  # closes where it was lowered
    path = []
    for _ in range(60):
        path.append(env.step(env.unwrapped.expert_action())[0]["state"])
    path = np.stack(path)
    hand_gaps = np.linalg.norm(path[:, None, :3] - states[None, :, :3], axis=-1)
    gripper_gaps = np.abs(path[:, None, 6] - states[None, :, 6])
    passed = (hand_gaps < 0.03) & (gripper_gaps < 0.01)
    assert passed.any(0).all(), passed.any(0)  # the expert passes every way-point, gripper as pictured


def test_pick_and_place_succeeds_only_once_the_block_is_let_go_of():
    env = make("worldjepa/ArmPickPlace-v0")
    env.reset(seed=3)
    held_at_target = []
    for _ in range(60):
        _, _, _, _, info = env.step(env.unwrapped.expert_action())
        unwrapped = env.unwrapped
        if info["distance"] < unwrapped.success_threshold and not info["success"]:
            held_at_target.append(unwrapped._holds_block())
    assert held_at_target and all(held_at_target)  # on the spot but still held: not yet a success
    assert info["success"] and unwrapped.block_position[2] < 0.035


def test_sim_state_round_trip_replays_exactly():
    env = make("worldjepa/ArmPickPlace-v0")
    env.reset(seed=5)
    for _ in range(8):
        env.step(env.unwrapped.expert_action())
    snapshot = env.unwrapped.get_sim_state()
    actions = [env.unwrapped.expert_action(np.random.default_rng(i), 0.5) for i in range(6)]
    first = [env.step(a)[0] for a in actions]
    env.reset(seed=99)  # a different episode in between, with a different goal
    env.unwrapped.set_sim_state(snapshot)
    np.testing.assert_array_equal(env.unwrapped.goal, snapshot["mocap_pos"][0])
    second = [env.step(a)[0] for a in actions]
    for obs_a, obs_b in zip(first, second, strict=True):
        np.testing.assert_array_equal(obs_a["pixels"], obs_b["pixels"])
        np.testing.assert_array_equal(obs_a["state"], obs_b["state"])


def test_unknown_env_id_lists_the_valid_ones():
    with pytest.raises(UserError, match="worldjepa/ArmReach-v0") as error:
        make("worldjepa/ArmTeleport-v0")
    assert "unknown env id" in str(error.value)
    assert set(ARM_IDS) <= set(ENVS)


@pytest.mark.parametrize("name", [name for name in [*PRESETS, *TRAINING_LOOKS] if name != "default"])
def test_variations_change_pixels_not_dynamics(name):
    actions = [np.array([0.4, -0.3, -0.6, -1.0])] * 4 + [np.array([-0.5, 0.5, 0.2, 1.0])] * 4
    runs = {}
    for variation in ("default", name):
        env = make("worldjepa/ArmPush-v0", variation=variation)
        env.reset(seed=11)
        runs[variation] = [env.step(a)[0] for a in actions]
    for base, varied in zip(runs["default"], runs[name], strict=True):
        np.testing.assert_array_equal(base["state"], varied["state"])
        changed = np.any(base["pixels"] != varied["pixels"], axis=-1).mean()
        assert changed > 0.01  # distractors cover the least: about 1.5 % of the pixels


def test_random_lights_draw_a_light_per_episode_from_its_seed():
    """Domain randomisation: each reset draws a light within LIGHT_RANGES; the same seed the same light
    (and picture), another seed another light."""
    env = make("worldjepa/ArmReach-v0", variation="random_lights")
    model = env.unwrapped.model
    looks = []
    for seed in (3, 4, 3):
        pixels = env.reset(seed=seed)[0]["pixels"]
        looks.append((pixels, model.light_dir[0].copy(), float(model.light_diffuse[0, 0])))
        direction, diffuse = looks[-1][1:]
        np.testing.assert_allclose(np.linalg.norm(direction), 1.0, rtol=1e-6)
        assert LIGHT_RANGES["down"][0] <= -direction[2] <= LIGHT_RANGES["down"][1]
        assert LIGHT_RANGES["diffuse"][0] <= diffuse <= LIGHT_RANGES["diffuse"][1]
        assert LIGHT_RANGES["ambient"][0] <= model.vis.headlight.ambient[0] <= LIGHT_RANGES["ambient"][1]
    np.testing.assert_array_equal(looks[0][0], looks[2][0])
    assert not np.allclose(looks[0][1], looks[1][1]) and looks[0][2] != looks[1][2]
    assert "random_lights" not in PRESETS  # a training look, never a zero-shot test scene


def test_unknown_variation_is_a_user_error():
    with pytest.raises(UserError, match="colors"):
        make("worldjepa/ArmReach-v0", variation="sepia")


def test_gl_backend_respects_user_choice_and_explains_missing_opengl(monkeypatch):
    assert rendering.gl_backend() in ("egl", "osmesa", "glfw", "glx")
    monkeypatch.setattr(rendering, "_backend_works", lambda backend: False)
    try:
        monkeypatch.setenv("MUJOCO_GL", "vulkan")
        rendering.gl_backend.cache_clear()
        with pytest.raises(UserError, match="MUJOCO_GL"):
            rendering.gl_backend()
        monkeypatch.delenv("MUJOCO_GL")
        rendering.gl_backend.cache_clear()
        with pytest.raises(UserError, match="apt-get install libegl1 libgl1-mesa-dri"):
            rendering.gl_backend()
    finally:
        monkeypatch.undo()
        rendering.gl_backend.cache_clear()
    assert rendering.gl_backend() in ("egl", "osmesa", "glfw", "glx")


def test_target_marker_is_hidden_unless_asked_for():
    hidden = make("worldjepa/ArmReach-v0").reset(seed=0)[0]["pixels"]
    shown = make("worldjepa/ArmReach-v0", show_target=True).reset(seed=0)[0]["pixels"]
    assert np.any(hidden != shown)
