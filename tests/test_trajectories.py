"""The on-disk trajectory format, its clip dataset, and parallel data collection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worldjepa.data.datasets import DataConfig, build_dataset
from worldjepa.data.trajectories import TrajectoryDataset, TrajectoryWriter, read_meta
from worldjepa.envs.registry import make_env
from worldjepa.errors import UserError
from worldjepa.stages.collect import collect, write_episode_preview

H = W = 8
META = {"env_id": "test/Fake-v0", "image_size": (H, W), "action_dim": 2, "state_dim": 3}


def _episode(index: int, length: int) -> dict[str, np.ndarray]:
    """Every value encodes (episode, time step), so a read can say exactly where it came from."""
    t = np.arange(length)
    frames = np.zeros((length, H, W, 3), np.uint8)
    frames[..., 0] = index
    frames[..., 1] = t[:, None, None]
    actions = np.stack([np.full(length - 1, index), t[:-1]], axis=1).astype(np.float32)
    states = np.stack([np.full(length, index), t, -t], axis=1).astype(np.float32)
    return {"frames": frames, "actions": actions, "states": states}


def _write(root, lengths, first=0, chunk_frames=10, **meta):
    with TrajectoryWriter(root, **{**META, **meta}, chunk_frames=chunk_frames) as writer:
        for i, length in enumerate(lengths, start=first):
            writer.add_episode(**_episode(i, length), seed=100 + i, policy="random")


def test_round_trip_across_chunks(tmp_path):
    lengths = [5, 7, 4, 9]
    _write(tmp_path, lengths)
    assert len(list(tmp_path.glob("chunk_*"))) > 1
    data = TrajectoryDataset(tmp_path, clip_length=1)
    assert data.num_episodes == 4 and data.num_frames == sum(lengths)
    for i, length in enumerate(lengths):
        episode, expected = data.episode(i), _episode(i, length)
        for key in ("frames", "actions", "states"):
            np.testing.assert_array_equal(episode[key], expected[key])
        assert (episode["seed"], episode["variation"], episode["policy"]) == (100 + i, "default", "random")


def test_append_mode_and_meta_mismatch(tmp_path):
    _write(tmp_path, [5, 6])
    _write(tmp_path, [4], first=2)
    data = TrajectoryDataset(tmp_path, clip_length=2)
    assert data.num_episodes == 3
    np.testing.assert_array_equal(data.episode(2)["states"], _episode(2, 4)["states"])
    with pytest.raises(UserError, match="action_dim"):
        TrajectoryWriter(tmp_path, **{**META, "action_dim": 4})


def test_a_folder_mixes_looks_and_each_episode_keeps_its_own(tmp_path):
    _write(tmp_path, [5, 6])
    _write(tmp_path, [4], first=2, variation="random_lights")
    data = TrajectoryDataset(tmp_path, clip_length=1)
    looks = [data.episode(i)["variation"] for i in range(data.num_episodes)]
    assert looks == ["default", "default", "random_lights"]
    assert read_meta(tmp_path)["variation"] == "default"  # the first collection's


def test_stage_one_pools_the_clips_of_several_trajectory_folders(tmp_path):
    """Stage 1 may learn from several recordings of one robot (tasks, scenes): `data.root` as a list."""
    _write(tmp_path / "reach", [5, 6])
    _write(tmp_path / "push", [4], first=7, env_id="test/Other-v0")
    data = DataConfig(
        dataset="trajectories",
        root=[str(tmp_path / "reach"), str(tmp_path / "push")],
        image_size=H,
        num_frames=2,
    )
    pooled = build_dataset(data, video=True, train=True)
    assert len(pooled) == (5 - 1) + (6 - 1) + (4 - 1)
    # the last clip is the second folder's last clip: episode 7, frames 2 and 3
    frames = pooled[len(pooled) - 1]["video"]
    single = build_dataset(
        DataConfig(**{**vars(data), "root": str(tmp_path / "push")}), video=True, train=True
    )
    torch.testing.assert_close(frames, single[2]["video"], rtol=0, atol=0)
    with pytest.raises(UserError, match="single DIR"):
        DataConfig(dataset="folder", root=[str(tmp_path)])


def test_stage_one_scene_augment_gives_each_training_clip_one_look(tmp_path):
    """`data.scene_augment`: a share of training clips in a random look (one per clip, `scene_augment`'s
    `group`), drawn from the sample's seed (reproducible); the held-out view is always as recorded."""
    from worldjepa.train.sampler import SeededDataset

    _write(tmp_path / "a", [6])
    _write(tmp_path / "b", [6], first=1)
    data = DataConfig(
        dataset="trajectories", root=[str(tmp_path / "a"), str(tmp_path / "b")], image_size=H, num_frames=3
    )
    plain = build_dataset(data, video=True, train=True)
    looks = SeededDataset(build_dataset(DataConfig(**{**vars(data), "scene_augment": 1.0}), True, True))
    last = len(plain) - 1  # the second folder's: PooledDataset passes `sample` to the right part
    for index in (0, last):
        seen = looks[(index, 7)]["video"]
        assert not torch.allclose(seen, plain[index]["video"])
        torch.testing.assert_close(seen, looks[(index, 7)]["video"], rtol=0, atol=0)
    held_out = build_dataset(DataConfig(**{**vars(data), "scene_augment": 1.0}), video=True, train=False)
    torch.testing.assert_close(SeededDataset(held_out)[(0, 7)]["video"], plain[0]["video"], rtol=0, atol=0)
    with pytest.raises(UserError, match="scene_augment"):
        DataConfig(dataset="shapes", scene_augment=0.5)


def test_clips_with_frame_skip_stay_inside_episodes(tmp_path):
    lengths = [5, 9, 3, 12]
    _write(tmp_path, lengths)
    clip_length, skip = 3, 2
    data = TrajectoryDataset(tmp_path, clip_length=clip_length, frame_skip=skip)
    span = (clip_length - 1) * skip + 1
    assert len(data) == sum(max(n - span + 1, 0) for n in lengths)
    for i in range(len(data)):
        clip = data[i]
        assert clip["frames"].shape == (clip_length, 3, H, W)
        assert clip["actions"].shape == (clip_length - 1, skip * 2)
        states = clip["states"].numpy()
        assert len(set(states[:, 0])) == 1  # one episode per clip
        np.testing.assert_array_equal(np.diff(states[:, 1]), skip)
        t0 = int(states[0, 1])
        # the actions between sampled frames t and t+skip are raw actions t..t+skip-1, concatenated
        raw_steps = clip["actions"].numpy().reshape(clip_length - 1, skip, 2)[..., 1]
        np.testing.assert_array_equal(raw_steps.ravel(), np.arange(t0, t0 + (clip_length - 1) * skip))
        assert (clip["frames"][:, 1, 0, 0].numpy() == states[:, 1]).all()
    with pytest.raises(IndexError):
        data[len(data)]


def test_corrupted_chunk_is_an_error_and_stale_tmp_removed(tmp_path):
    _write(tmp_path, [6, 6, 6, 6], chunk_frames=6)
    frames = tmp_path / "chunk_000001" / "frames.npy"
    frames.write_bytes(frames.read_bytes()[:200])  # a truncated file
    (tmp_path / "chunk_000009.tmp").mkdir()  # what a killed writer leaves
    with pytest.raises(UserError, match="chunk_000001 is corrupt or truncated"):
        TrajectoryDataset(tmp_path, clip_length=2)
    TrajectoryWriter(tmp_path, **META)
    assert not (tmp_path / "chunk_000009.tmp").exists()


def test_invalid_episodes_are_refused(tmp_path):
    writer = TrajectoryWriter(tmp_path, **META)
    bad = _episode(0, 5)
    bad["actions"][2, 1] = np.nan
    with pytest.raises(UserError, match="NaN"):
        writer.add_episode(**bad, seed=0)
    with pytest.raises(UserError, match="actions"):
        writer.add_episode(**{**_episode(0, 5), "actions": np.zeros((5, 2))}, seed=0)
    with pytest.raises(UserError, match="meta.json"):
        TrajectoryDataset(tmp_path / "missing", clip_length=2)


def test_collect_two_rooms_in_parallel_is_deterministic(tmp_path):
    kwargs = {"episodes": 6, "seed": 3, "max_steps": 10, "image_size": 32, "progress": False}
    result = collect("worldjepa/TwoRooms-v0", out_dir=tmp_path / "par", workers=2, **kwargs)
    assert (result.episodes, result.frames) == (6, 6 * 11)
    collect("worldjepa/TwoRooms-v0", out_dir=tmp_path / "seq", workers=0, **kwargs)
    par = TrajectoryDataset(tmp_path / "par", clip_length=4)
    seq = TrajectoryDataset(tmp_path / "seq", clip_length=4)
    assert par.num_frames == 66 and par.meta["image_size"] == [32, 32]
    policies = set()
    for i in range(6):
        a, b = par.episode(i), seq.episode(i)
        policies.add(a["policy"])
        for key in ("frames", "actions", "states", "seed"):
            np.testing.assert_array_equal(a[key], b[key])
    assert policies == {"random", "expert"}
    collect("worldjepa/TwoRooms-v0", out_dir=tmp_path / "seq", workers=0, **kwargs)  # append continues
    grown = TrajectoryDataset(tmp_path / "seq", clip_length=4)
    assert grown.num_episodes == 12 and grown.episode(6)["seed"] != grown.episode(0)["seed"]
    for name in ("preview.png", "preview.gif"):
        assert write_episode_preview(tmp_path / "par", tmp_path / name).stat().st_size > 0


def test_a_push_collection_records_where_the_block_is_and_nan_once_it_is_off_the_table(tmp_path):
    collect(
        "worldjepa/ArmPush-v0", 2, tmp_path, "expert", workers=0, image_size=32, max_steps=12, progress=False
    )
    data = TrajectoryDataset(tmp_path, clip_length=1)
    assert data.meta["object_dim"] == 4
    episode = data.episode(0)
    env = make_env("worldjepa/ArmPush-v0", image_size=32)
    env.reset(seed=episode["seed"])
    block = env.unwrapped.block_position
    np.testing.assert_allclose(episode["objects"][0, :2], block[:2], atol=1e-6)
    np.testing.assert_allclose(np.hypot(*episode["objects"][:, 2:].T), 1.0, atol=1e-5)  # cos, sin of 4 yaw
    env.unwrapped._set_block(np.array([1.2, 0.0, 0.025]), 0.0)  # knocked off the table
    assert np.isnan(env.unwrapped.object_state()).all()
    writer = TrajectoryWriter(tmp_path, "worldjepa/ArmPush-v0", (32, 32), 4, 7, object_dim=4)
    with pytest.raises(UserError, match="records objects"):
        writer.add_episode(episode["frames"], episode["actions"], episode["states"], seed=1)
    with pytest.raises(UserError, match="object_dim"):
        TrajectoryWriter(tmp_path, "worldjepa/ArmPush-v0", (32, 32), 4, 7)
