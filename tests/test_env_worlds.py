"""The benchmark worlds: Two Rooms, the DeepMind Control reacher, and the generic Gymnasium adapter."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from worldjepa.envs.gym_adapter import GymPixelsAdapter, area_resize
from worldjepa.envs.registry import make
from worldjepa.envs.two_rooms import SUCCESS_RADIUS, WORLD_SIZE, TwoRoomsEnv
from worldjepa.errors import UserError

# ---- Two Rooms -------------------------------------------------------------------------------------------


def _rollout(env: gym.Env, seed: int, steps: int) -> list[dict[str, np.ndarray]]:
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = [obs]
    for _ in range(steps):
        out.append(env.step(rng.uniform(-3, 3, 2))[0])
    return out


def test_two_rooms_is_deterministic_and_follows_the_contract():
    a, b = TwoRoomsEnv(), TwoRoomsEnv()
    for obs_a, obs_b in zip(_rollout(a, 7, 20), _rollout(b, 7, 20), strict=True):
        assert a.observation_space.contains(obs_a)
        np.testing.assert_array_equal(obs_a["pixels"], obs_b["pixels"])
        np.testing.assert_array_equal(obs_a["state"], obs_b["state"])
    assert not np.array_equal(_rollout(a, 8, 0)[0]["state"], _rollout(a, 7, 0)[0]["state"])
    with pytest.raises(UserError, match="shape"):
        a.step(np.zeros(3))
    with pytest.raises(UserError, match="finite"):
        a.step(np.array([np.nan, 0.0]))
    before = a.get_sim_state()["pos"]
    a.step(np.array([100.0, 0.0]))  # clipped to the 3 px bound
    assert a.get_sim_state()["pos"][0] - before[0] <= 3.0 + 1e-9


def test_two_rooms_wall_can_only_be_crossed_through_the_door():
    env = TwoRoomsEnv(door_center=20.0)
    env.reset(seed=0)
    env.set_sim_state({"pos": np.array([15.0, 50.0]), "goal": np.array([50.0, 50.0]), "door": 20.0})
    for _ in range(30):  # push straight at the wall, far from the door
        obs, *_ = env.step(np.array([3.0, 0.0]))
    assert obs["state"][0] < 31.0
    rng = np.random.default_rng(0)
    crossings = 0
    for seed in range(20):  # random walks: every change of room happens inside the door opening
        env.reset(seed=seed)
        prev = env.get_sim_state()["pos"]
        for _ in range(200):
            pos = env.step(rng.uniform(-3, 3, 2))[0]["state"].astype(np.float64)
            if (prev[0] < 32.5) != (pos[0] < 32.5):
                crossings += 1
                half = env.door_half_width
                assert abs(pos[1] - 20.0) <= half and abs(prev[1] - 20.0) <= half
            prev = pos
    assert crossings > 0


def test_two_rooms_expert_solves_through_the_door():
    env = make("worldjepa/TwoRooms-v0")
    solved = 0
    for seed in range(20):
        _, info = env.reset(seed=seed)
        assert info["distance"] > 20  # start and goal are in different rooms
        done = False
        while not done:
            _, _, terminated, truncated, info = env.step(env.unwrapped.expert_action())
            done = terminated or truncated
        solved += info["success"]
    assert solved >= 19


def test_two_rooms_success_threshold():
    env = TwoRoomsEnv()
    env.reset(seed=0)
    goal = np.array([15.0, 32.0])
    for offset, expected in ((SUCCESS_RADIUS - 0.1, True), (SUCCESS_RADIUS + 0.1, False)):
        env.set_sim_state({"pos": goal + [offset, 0.0], "goal": goal, "door": env.get_sim_state()["door"]})
        info = env.step(np.zeros(2))[-1]
        assert info["success"] is expected
        assert info["distance"] == pytest.approx(offset)


def test_two_rooms_goal_image_shows_the_agent_at_the_goal():
    env = TwoRoomsEnv(image_size=64)
    env.reset(seed=3)
    state = env.get_sim_state()
    goal = env.goal_observation()
    np.testing.assert_allclose(goal["state"], state["goal"], atol=1e-5)
    env.set_sim_state({**state, "pos": state["goal"]})
    np.testing.assert_array_equal(goal["pixels"], env.render())
    red = goal["pixels"][..., 0].astype(int) - goal["pixels"][..., 1]
    row, col = np.unravel_index(np.argmax(red), red.shape)
    goal_px = state["goal"] * 64 / WORLD_SIZE
    assert np.hypot(col + 0.5 - goal_px[0], row + 0.5 - goal_px[1]) < 1.5
    assert (goal["pixels"] == 200).all(axis=-1)[:, 32].any()  # the middle wall is drawn


# ---- DeepMind Control reacher ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reacher_cls():
    pytest.importorskip("dm_control")
    from worldjepa.envs.dmc_reacher import DMCReacherEnv

    try:
        DMCReacherEnv().close()
    except UserError as error:  # no OpenGL on this machine
        pytest.skip(str(error))
    return DMCReacherEnv


def test_reacher_shapes_and_determinism(reacher_cls):
    a, b = reacher_cls(image_size=32), reacher_cls(image_size=32)
    try:
        obs, info = a.reset(seed=1)
        assert obs["pixels"].shape == (32, 32, 3) and obs["pixels"].dtype == np.uint8
        assert obs["state"].shape == (4,) and obs["state"].dtype == np.float32
        assert set(info) >= {"success", "distance"}
        b.reset(seed=1)
        for t in range(5):
            action = np.array([1.0, -1.0]) * (-1) ** t
            obs_a, obs_b = a.step(action)[0], b.step(action)[0]
            np.testing.assert_array_equal(obs_a["pixels"], obs_b["pixels"])
            np.testing.assert_array_equal(obs_a["state"], obs_b["state"])
        goal = a.goal_observation()
        np.testing.assert_allclose(goal["state"][:2] % (2 * np.pi), a._goal_qpos % (2 * np.pi), atol=1e-5)
        snapshot = a.get_sim_state()
        first = a.step(np.ones(2))[0]
        a.set_sim_state(snapshot)
        np.testing.assert_array_equal(a.step(np.ones(2))[0]["pixels"], first["pixels"])
    finally:
        a.close()
        b.close()


@pytest.mark.slow
def test_reacher_expert_reaches_the_goal_pose(reacher_cls):
    env = reacher_cls(image_size=16)
    try:
        solved = 0
        for seed in range(6):
            env.reset(seed=seed)
            for _ in range(60):
                info = env.step(env.expert_action())[-1]
            solved += info["success"]
            assert not info["success"] or info["fingertip_distance"] < 0.03
        assert solved >= 5
    finally:
        env.close()


# ---- Gymnasium adapter -----------------------------------------------------------------------------------


def test_area_resize_averages_blocks():
    image = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    small = area_resize(image, 2, 2)
    expected = image.reshape(2, 2, 2, 2, 3).astype(float).mean(axis=(1, 3))
    np.testing.assert_array_equal(small, np.floor(expected + 0.5))


def test_gym_adapter_on_a_mujoco_env():
    from worldjepa.envs.rendering import gl_backend

    try:
        gl_backend()
        env = GymPixelsAdapter(gym.make("InvertedPendulum-v5", render_mode="rgb_array"), image_size=32)
        obs, info = env.reset(seed=0)
    except Exception as error:  # noqa: BLE001 - any missing renderer or dependency means "cannot test here"
        pytest.skip(f"InvertedPendulum-v5 cannot render here: {error}")
    try:
        assert obs["pixels"].shape == (32, 32, 3) and obs["pixels"].dtype == np.uint8
        assert obs["state"].shape == (4,) and obs["state"].dtype == np.float32
        assert info["success"] is False
        obs, *_ = env.step(np.array([10.0]))  # clipped to the env's bound
        assert env.observation_space.contains(obs)
        with pytest.raises(UserError):
            env.step(np.zeros(2))
    finally:
        env.close()


def test_gym_adapter_refuses_discrete_actions():
    with pytest.raises(UserError, match="Box"):
        GymPixelsAdapter(gym.make("CartPole-v1", render_mode="rgb_array"))


def test_any_gymnasium_env_gets_goal_images_from_a_rollout():
    """`evaluate` on an env of Gymnasium's own: the goal is the frame 5 random steps ahead, the start the
    same seed's reset; random actions rarely land there, the rollout's own actions always do."""
    from worldjepa.envs import EnvConfig
    from worldjepa.eval.closed_loop import RandomPolicy, evaluate

    cfg = EnvConfig(id="InvertedPendulum-v5", image_size=32, goal_steps=5, goal_threshold=1e-6)
    try:
        env = cfg.make()
        obs, info = env.reset(seed=3)
    except Exception as error:  # noqa: BLE001 - any missing renderer or dependency means "cannot test here"
        pytest.skip(f"InvertedPendulum-v5 cannot render here: {error}")
    goal = env.unwrapped.goal_observation()
    assert goal["pixels"].shape == (32, 32, 3) and info["distance"] > 0
    rng = np.random.default_rng(3)
    for _ in range(5):  # replay the rollout that made the goal: the env is deterministic
        obs, _, _, _, info = env.step(
            rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
        )
    assert info["success"] and np.array_equal(obs["pixels"], goal["pixels"])
    report = evaluate(cfg.make, RandomPolicy(env.action_space), episodes=2, seed=0, max_steps=5)
    env.close()
    assert len(report.episodes) == 2 and all(np.isfinite(e.final_distance) for e in report.episodes)
