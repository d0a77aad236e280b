"""Nothing lost, nothing silent: each case of issue 17 (a careless or hostile user) as a regression test,
and property-based fuzzing of config overrides and trajectory folders: bad input gives a one-line
UserError (exit 2 from the CLI), never a traceback, a silent wrong result or lost files."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddp_worker import ToyDataset, ToyMethod, toy_config
from worldjepa.config import preset_names, read_yaml
from worldjepa.data.trajectories import TrajectoryDataset, TrajectoryWriter
from worldjepa.errors import UserError
from worldjepa.files import new_folder
from worldjepa.presets import PretrainPreset, WorldModelPreset, load_config
from worldjepa.train import Trainer
from worldjepa.train.checkpoint import LATEST, load_checkpoint, save_checkpoint

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _cli(capsys, *argv: str) -> str:
    """Run the CLI, which must exit 2 with one line on stderr; returns that line."""
    from worldjepa.cli import main

    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


# ------------------------------------------------------------------ config values, before any work
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.batch_size=2.5", "'train.batch_size' takes an integer, got 2.5"),
        ("train.total_steps=[1,2]", "'train.total_steps' takes an integer, got \\[1, 2\\]"),
        ("train.total_steps=2.5", "'train.total_steps' takes an integer, got 2.5"),
        ("train.lr=-1", "train.lr must be >= 0, got -1.0"),
        ("train.lr=.nan", "'train.lr' takes a finite number"),
        ("train.lr=1e999", "'train.lr' takes a finite number"),
        ("train.betas=[0.9, 1.5]", "train.betas must be in \\[0, 1\\)"),
        ("train.eps=-1e-8", "train.eps must be >= 0"),
        ("train.grad_clip=-1", "train.grad_clip must be >= 0"),
        ("train.num_workers=-2", "train.num_workers must be >= 0"),
    ],
)
def test_bad_training_values_are_refused_at_load(override, message):
    with pytest.raises(UserError, match=message):
        load_config("ijepa_tiny", [override])


def test_bad_evaluation_rows_are_refused_at_load():
    with pytest.raises(UserError, match="evaluate.baselines\\[0\\]' takes 'random'"):
        load_config("wm_arm_reach", ["evaluate.baselines=[oracle]"])


def test_presets_missing_sections_take_the_defaults(tmp_path):
    (tmp_path / "pretrain.yaml").write_text("method: ijepa\ntrain: {total_steps: 2}\n")
    cfg = load_config(tmp_path / "pretrain.yaml")
    assert isinstance(cfg, PretrainPreset) and cfg.regularizer.kind is not None
    (tmp_path / "wm.yaml").write_text("env: {id: worldjepa/ArmReach-v0}\n")
    assert isinstance(load_config(tmp_path / "wm.yaml"), WorldModelPreset)


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)), b"\xff\xfe\x00garbage", b"train: {lr: [\x01\x02", b"\x00" * 64, b"- a\n- b\n"],
)
def test_binary_or_broken_yaml_is_one_line(tmp_path, content):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(UserError) as error:
        read_yaml(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


_KEYS = [
    "train.lr", "train.batch_size", "train.total_steps", "train.epochs", "train.betas", "train.precision",
    "train.device", "data.image_size", "data.dataset", "data.num_frames", "model.size", "model.patch_size",
    "model.embed_dim", "masks", "ema", "method", "regularizer.kind", "probe.kind", "train",
]  # fmt: skip


_WM_KEYS = [
    "env.id", "env.variation", "env.image_size", "collect.episodes", "collect.expert_fraction",
    "world_model.tokens_per_frame", "world_model.predictor_size", "world_model.frame_skip",
    "world_model.train.lr", "world_model.proprio_fit.lr", "planner.horizon", "planner.samples",
    "planner.top_k", "planner.kind", "evaluate.baselines", "evaluate.episodes", "encoder.overrides",
]  # fmt: skip


_VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["-1", "0", "2.5", "1e999", ".nan", "-.inf", "[]", "[1, 2]", "{a: 1}", "null", "true", "'x'",
         "!!python/object:os.system", "[[", "{", "0x10", "99999999999999999999999", "2e-4", "grid"]
    ),
)  # fmt: skip


@FUZZ
@given(
    st.sampled_from(preset_names()),
    st.lists(
        st.one_of(st.text(max_size=20), st.tuples(st.sampled_from(_KEYS + _WM_KEYS), _VALUES)), max_size=3
    ),
)
def test_fuzzed_overrides_raise_only_user_errors(preset, items):
    overrides = [item if isinstance(item, str) else f"{item[0]}={item[1]}" for item in items]
    try:
        load_config(preset, overrides)
    except UserError as error:
        assert str(error)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(_WM_KEYS), _VALUES), min_size=1, max_size=3))
def test_fuzzed_world_model_values_raise_only_user_errors(items):
    try:
        load_config("wm_arm_reach", [f"{key}={value}" for key, value in items])
    except UserError as error:
        assert str(error)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["ijepa_tiny", "vjepa2_tiny"]),
    st.integers(1, 9),  # patch size
    st.integers(1, 24),  # image size
    st.integers(1, 4),  # heads
    st.integers(1, 40),  # width
    st.integers(1, 4),  # frames
)
def test_fuzzed_network_shapes_build_and_run_or_raise_user_errors(preset, patch, image, heads, width, frames):
    """Shapes a user may set: refused by the config or by the networks' own checks, never a torch error
    mid-forward (an odd RoPE head, a 2D sin-cos table of 6 channels)."""
    from worldjepa.models import build_mask_collator, build_method

    dataset = "synthetic_video" if preset == "vjepa2_tiny" else "shapes"
    overrides = [f"model.patch_size={patch}", f"data.image_size={image}", f"model.num_heads={heads}",
                 f"model.embed_dim={width}", "model.depth=1", f"data.num_frames={frames}", "model.tubelet_size=1",
                 "model.predictor_embed_dim=8", "model.predictor_num_heads=1", "model.predictor_depth=1",
                 f"data.dataset={dataset}"]  # fmt: skip
    try:
        cfg = load_config(preset, overrides)
        method = build_method(cfg)
        collator = build_mask_collator(cfg.masks, method.encoder)
        key, shape = ("video", (3, frames, image, image)) if cfg.video else ("image", (3, image, image))
        method(collator([{key: torch.randn(shape), "seed": i} for i in range(2)]))
    except UserError as error:
        assert str(error)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["model.pos_embed=rope", "model.embed_dim=42", "model.num_heads=2"],
            "even head dimension .* got 21",
        ),
        (["model.embed_dim=6", "model.num_heads=1"], "width divisible by 4, got 6"),
    ],
)
def test_network_shapes_torch_would_fail_on_mid_forward(overrides, message):
    from worldjepa.models import build_method

    with pytest.raises(UserError, match=message):
        build_method(load_config("ijepa_tiny", overrides))


# ------------------------------------------------------------------ training: NaN guards, checkpoints, a full disk
class _Diverging(ToyMethod):
    """The toy method whose loss (or weights) turn NaN after `at` optimizer steps."""

    def __init__(self, at: int, weights: bool = False) -> None:
        super().__init__(stochastic=False)
        self.at, self.weights = at, weights

    def forward(self, batch):
        out = super().forward(batch)
        if self.steps_done >= self.at and not self.weights:
            out.loss = out.loss * float("nan")
        return out

    def after_optimizer_step(self, progress: float) -> None:
        super().after_optimizer_step(progress)
        if self.weights and self.steps_done == self.at:
            with torch.no_grad():
                self.predictor.weight[0, 0] = float("inf")


def test_a_nan_loss_stops_training_before_it_is_logged_or_saved(tmp_path):
    cfg = toy_config(total_steps=8, log_every=1, ckpt_every=2)
    with pytest.raises(UserError, match="training diverged: the loss is nan in steps 4-4"):
        Trainer(_Diverging(at=3), ToyDataset(), None, cfg, tmp_path).fit()
    assert load_checkpoint(tmp_path / LATEST)["step"] == 2  # the last good checkpoint, intact
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 and "nan" not in "".join(rows)


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    cfg = toy_config(total_steps=8, log_every=100, ckpt_every=2)
    with pytest.raises(UserError, match="1 of .* weight tensors are NaN or infinite after step 4"):
        Trainer(_Diverging(at=4, weights=True), ToyDataset(), None, cfg, tmp_path).fit()
    ckpt = load_checkpoint(tmp_path / LATEST)
    assert ckpt["step"] == 2 and all(torch.isfinite(t).all() for t in ckpt["model"].values())


def test_rankme_of_diverged_embeddings_is_nan_not_a_linalg_error():
    from worldjepa.train.monitor import collapse_metrics

    z = torch.randn(16, 8)
    z[3, 2] = float("nan")
    assert np.isnan(collapse_metrics(z)["rankme"])


def test_stale_checkpoint_temp_files_are_removed_on_the_next_start(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    stale = tmp_path / f".{LATEST}.k1ll3d.tmp"  # what `kill -9` during a save leaves
    stale.write_bytes(b"\0" * 1000)
    Trainer(ToyMethod(), ToyDataset(), None, toy_config(), tmp_path).fit()
    assert not stale.exists() and (tmp_path / LATEST).is_file()


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError("[enforce fail] unexpected pos 768 vs 662"),
    ],
)
def test_a_full_disk_during_a_save_says_so_and_keeps_the_old_checkpoint(tmp_path, monkeypatch, error):
    path = save_checkpoint(tmp_path / LATEST, {"step": 1})

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise error

    monkeypatch.setattr(torch, "save", full_disk)
    if isinstance(error, RuntimeError):  # torch's short write has no errno: the free space tells
        monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(100, 100, 0))
    with pytest.raises(UserError, match="disk full while writing .*latest.pt"):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1 and [p.name for p in tmp_path.iterdir()] == [LATEST]


def test_a_full_disk_anywhere_else_is_one_line_from_the_cli(monkeypatch, capsys):
    import worldjepa.cli

    def full_disk(args):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/metrics.csv")

    monkeypatch.setattr(worldjepa.cli, "cmd_envs", full_disk)
    assert "disk full while writing runs/x/metrics.csv" in _cli(capsys, "envs")


# ------------------------------------------------------------------ trajectory folders
H = W = 8


def _write_folder(root: Path, lengths: list[int], chunk_frames: int = 10) -> None:
    rng = np.random.default_rng(0)
    with TrajectoryWriter(root, "test/Fake-v0", (H, W), 2, 3, chunk_frames=chunk_frames) as writer:
        for i, length in enumerate(lengths):
            frames = rng.integers(0, 255, (length, H, W, 3), dtype=np.uint8)
            actions = rng.normal(size=(length - 1, 2)).astype(np.float32)
            states = rng.normal(size=(length, 3)).astype(np.float32)
            writer.add_episode(frames, actions, states, seed=i)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two chunks of two episodes each."""
    root = tmp_path_factory.mktemp("trajectories") / "data"
    _write_folder(root, [5, 6, 5, 6], chunk_frames=10)
    return root


@pytest.fixture
def damaged(folder, tmp_path) -> Path:
    copy_ = tmp_path / "data"
    shutil.copytree(folder, copy_)
    return copy_


def test_one_truncated_chunk_of_two_is_an_error_not_half_the_data(damaged):
    frames = damaged / "chunk_000001" / "frames.npy"
    frames.write_bytes(frames.read_bytes()[:300])
    with pytest.raises(UserError, match="chunk_000001 is corrupt or truncated.*delete that chunk"):
        TrajectoryDataset(damaged, clip_length=2)


def test_every_chunk_truncated_names_the_damage_not_the_episode_length(damaged):
    from worldjepa.data.datasets import TrajectoryVideo

    for chunk in damaged.glob("chunk_*"):
        (chunk / "states.npy").write_bytes(b"")  # zero bytes
    with pytest.raises(UserError, match="corrupt or truncated \\(EOFError") as error:
        TrajectoryVideo(damaged, num_frames=2, frame_step=1, image_size=H)
    assert "longer episodes" not in str(error.value)


@pytest.mark.parametrize(
    "content", [b"", b"{not json", b"\xff\xfe\xfd", b"[1, 2]", b'{"format": "worldjepa-trajectories"}']
)
def test_corrupt_meta_json_is_one_line(damaged, content):
    (damaged / "meta.json").write_bytes(content)
    with pytest.raises(UserError, match="meta.json") as error:
        TrajectoryDataset(damaged, clip_length=2)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "table",
    [
        {"length": [5.5, 6], "seed": [0, 1], "variation": ["d", "d"], "policy": ["r", "r"]},
        {"length": [5, 6], "seed": ["x", 1], "variation": ["d", "d"], "policy": ["r", "r"]},
        {"length": [5, 6], "seed": [0], "variation": ["d", "d"], "policy": ["r", "r"]},
        {"length": [5, 6], "seed": [0, 1], "variation": ["d", "d"]},
    ],
)
def test_a_damaged_episode_table_is_refused(damaged, table):
    import json

    (damaged / "chunk_000000" / "episodes.json").write_text(json.dumps(table))
    with pytest.raises(UserError, match="chunk_000000 is corrupt or truncated"):
        TrajectoryDataset(damaged, clip_length=2)


@pytest.mark.parametrize(("name", "value"), [("actions", np.nan), ("states", np.inf)])
def test_non_finite_actions_or_states_are_refused(damaged, name, value):
    path = damaged / "chunk_000000" / f"{name}.npy"
    array = np.load(path)
    array[1, 0] = value
    np.save(path, array)
    with pytest.raises(UserError, match=f"chunk_000000 has NaN or infinite {name}"):
        TrajectoryDataset(damaged, clip_length=2)


_FILES = ["meta.json", "chunk_000000/episodes.json", "chunk_000000/frames.npy", "chunk_000001/actions.npy",
          "chunk_000001/states.npy"]  # fmt: skip


def _damaged_copy(folder: Path, tmp: str, name: str, kind: str, position: float, junk: bytes) -> Path:
    """A copy of `folder` under `tmp` whose file `name` is truncated at `position`, replaced by `junk`, or
    has `junk` written over it there."""
    root = Path(tmp) / folder.name
    shutil.copytree(folder, root)
    path = root / name
    data = path.read_bytes()
    cut = int(position * len(data))
    damaged = {"truncate": data[:cut], "replace": junk}.get(kind, data[:cut] + junk + data[cut + len(junk) :])
    path.write_bytes(damaged)
    return root


@FUZZ
@given(
    st.sampled_from(_FILES),
    st.sampled_from(["truncate", "replace", "overwrite"]),
    st.floats(0, 1),
    st.binary(max_size=64),
)
def test_fuzzed_trajectory_folders_load_or_raise_a_user_error(folder, name, kind, position, junk):
    with tempfile.TemporaryDirectory() as tmp:
        root = _damaged_copy(folder, tmp, name, kind, position, junk)
        try:
            data = TrajectoryDataset(root, clip_length=2)
        except UserError as error:
            assert str(error) and "\n" not in str(error)
            return
        for i in range(len(data)):  # what opened must read
            item = data[i]
            assert item["frames"].shape == (2, 3, H, W) and torch.isfinite(item["actions"]).all()
        for i in range(data.num_episodes):
            data.episode(i)


def test_a_chunk_write_interrupted_by_ctrl_c_is_written_on_close(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_save = np.save

    def interrupted_once(path, array):
        calls["n"] += 1
        if calls["n"] == 2:  # Ctrl-C in the middle of a chunk
            raise KeyboardInterrupt
        real_save(path, array)

    monkeypatch.setattr(np, "save", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        _write_folder(tmp_path / "data", [5, 6], chunk_frames=10)  # the writer's exit still flushes
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["chunk_000000", "meta.json"]
    assert TrajectoryDataset(tmp_path / "data", clip_length=2).num_episodes == 2


@pytest.mark.slow
def test_ctrl_c_during_a_parallel_collection_keeps_every_finished_chunk(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "data"
    argv = [sys.executable, "-m", "worldjepa", "collect", "--env", "worldjepa/TwoRooms-v0", "--episodes", "3000",
            "--out", str(out), "--workers", "2", "--image-size", "32"]  # fmt: skip
    # A foreground command in a terminal starts with Ctrl-C at its default; a background job of a script
    # (`pytest &`, nohup) inherits it ignored, and Python then installs no KeyboardInterrupt handler.
    process = subprocess.Popen(
        argv,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (out / "chunk_000000").is_dir() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the parent and its workers
    start = time.monotonic()
    _, err = process.communicate(timeout=30)
    assert time.monotonic() - start < 5 and process.returncode == 130
    assert b"Traceback" not in err and err.decode().strip().splitlines()[-1].startswith("interrupted")
    data = TrajectoryDataset(out, clip_length=2)
    assert data.num_episodes >= 40 and not list(out.glob("*.tmp"))


def test_evaluation_workers_end_when_their_parent_is_killed():
    """`run_row`'s pool workers plan for minutes per shard; a parent killed outright (`kill`, `timeout`)
    must not leave them running. The parent below holds a pool as `run_row` builds it, its worker busy."""
    import os
    import signal
    import subprocess
    import sys
    import time

    parent = subprocess.Popen(
        [sys.executable, "-c", (
            "import multiprocessing, os, time\n"
            "from concurrent.futures import ProcessPoolExecutor\n"
            "from worldjepa.stages.evaluate import exit_with_parent\n"
            "pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn'), initializer=exit_with_parent)\n"
            "print(pool.submit(os.getpid).result(), flush=True)\n"
            "pool.submit(time.sleep, 600)\n"
            "time.sleep(600)\n"
        )],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the killed parent's resource tracker reports its pool's semaphores
    )  # fmt: skip
    worker = int(parent.stdout.readline())

    def running() -> bool:  # an ended worker no init has reaped yet is a zombie ("Z"): ended
        try:
            return Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    assert running()  # alive while its parent is
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not running():
            return
        time.sleep(0.1)
    os.kill(worker, signal.SIGKILL)
    pytest.fail("the evaluation worker outlived its killed parent")


# ------------------------------------------------------------------ what a folder is, and mismatches
def _reach_folder(root: Path, size: int = 64, env_id: str = "worldjepa/ArmReach-v0") -> Path:
    with TrajectoryWriter(root, env_id, (size, size), 4, 7) as writer:
        frames = np.zeros((3, size, size, 3), np.uint8)
        writer.add_episode(frames, np.zeros((2, 4), np.float32), np.zeros((3, 7), np.float32), seed=1)
    return root


def test_trajectory_meta_records_what_the_data_is(folder):
    from worldjepa.data.trajectories import read_meta

    meta = read_meta(folder)
    assert (meta["env_id"], meta["image_size"], meta["action_dim"], meta["state_dim"]) == (
        "test/Fake-v0",
        [H, W],
        2,
        3,
    )


def test_a_world_model_records_what_it_was_trained_on(tmp_path):
    from worldjepa.stages.posttrain import trained_on_data

    data = _reach_folder(tmp_path / "data", size=32)
    trained_on = trained_on_data(data, tmp_path / "encoder")
    assert trained_on == {
        "env_id": "worldjepa/ArmReach-v0",
        "action_dim": 4,
        "state_dim": 7,
        "image_size": [32, 32],
        "seeds": [1],
    }


def test_a_world_model_keeps_the_seeds_of_every_stage_one_folder(tmp_path):
    """A stage 1 that pooled several trajectory folders: evaluation must avoid the seeds of all of them."""
    import yaml

    from worldjepa.config import to_dict
    from worldjepa.data.datasets import DataConfig
    from worldjepa.presets import PretrainPreset
    from worldjepa.stages.posttrain import trained_on_data

    data = _reach_folder(tmp_path / "data", size=32)
    others = []
    for seed in (5, 9):
        with TrajectoryWriter(tmp_path / f"s1_{seed}", "worldjepa/ArmPickPlace-v0", (32, 32), 4, 7) as writer:
            frames = np.zeros((3, 32, 32, 3), np.uint8)
            writer.add_episode(frames, np.zeros((2, 4), np.float32), np.zeros((3, 7), np.float32), seed=seed)
        others.append(str(tmp_path / f"s1_{seed}"))
    stage1 = PretrainPreset(
        method="vjepa", data=DataConfig(dataset="trajectories", root=others, image_size=32, num_frames=2)
    )
    (tmp_path / "encoder").mkdir()
    (tmp_path / "encoder" / "config.yaml").write_text(yaml.safe_dump(to_dict(stage1), sort_keys=False))
    assert trained_on_data(data, tmp_path / "encoder")["seeds"] == [1, 5, 9]


def test_frames_of_another_size_than_the_preset_are_refused_before_work(folder, tmp_path):
    from worldjepa.stages.pretrain import run_pretrain

    overrides = [
        "data.dataset=trajectories",
        f"data.root={folder}",
        "data.num_frames=2",
        "data.image_size=16",
    ]
    with pytest.raises(UserError, match="holds 8x8 frames but data.image_size is 16.*data.image_size=8"):
        run_pretrain(load_config("vjepa2_tiny", overrides), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_posttrain_refuses_data_of_another_env_or_size(tmp_path, capsys):
    push = _reach_folder(tmp_path / "push", env_id="worldjepa/ArmPush-v0")
    args = ["posttrain", "--encoder", str(tmp_path), "--run-dir", str(tmp_path / "run")]
    err = _cli(capsys, *args, "--data", str(push))
    assert "trajectories of worldjepa/ArmPush-v0, but the preset is for worldjepa/ArmReach-v0" in err
    small = _reach_folder(tmp_path / "small", size=32)
    assert "holds 32x32 frames, but the preset's env.image_size is 64" in _cli(
        capsys, *args, "--data", str(small)
    )
    assert not (tmp_path / "run").exists()


def test_posttrain_never_replaces_a_world_model_unless_asked(tmp_path, capsys):
    data = _reach_folder(tmp_path / "data")
    (tmp_path / "run" / "world_model").mkdir(parents=True)
    (tmp_path / "run" / "world_model" / "config.json").write_text("{}")
    args = ["posttrain", "--encoder", str(tmp_path), "--data", str(data), "--run-dir", str(tmp_path / "run")]
    assert "world_model already exists; pass --overwrite" in _cli(capsys, *args)
    assert (tmp_path / "run" / "world_model" / "config.json").read_text() == "{}"


def test_demo_train_refuses_a_run_dir_of_another_env_or_a_finished_one(tmp_path, capsys):
    _reach_folder(tmp_path / "reach" / "data")
    err = _cli(capsys, "demo", "-c", "wm_arm_push", "--train", "--run-dir", str(tmp_path / "reach"))
    assert "trajectories of worldjepa/ArmReach-v0, but the preset is for worldjepa/ArmPush-v0" in err
    (tmp_path / "reach" / "eval").mkdir()
    err = _cli(capsys, "demo", "--train", "--run-dir", str(tmp_path / "reach"))
    assert "eval holds the reports of an earlier demo; pass --overwrite" in err
    (tmp_path / "reach" / "world_model").mkdir()
    (tmp_path / "reach" / "world_model" / "config.json").write_text("{}")
    err = _cli(capsys, "demo", "--train", "--overwrite", "--run-dir", str(tmp_path / "reach"))
    assert "already holds a trained world model, which --train would reuse" in err


def test_demo_checks_the_planner_and_encoder_values_before_training(tmp_path, capsys):
    run = ["demo", "--train", "--run-dir", str(tmp_path / "run")]
    assert "iterations >= 1" in _cli(capsys, *run, "planner.iterations=0")
    assert "unknown config key 'model.dept'" in _cli(capsys, *run, "encoder.overrides=[model.dept=3]")
    assert not (tmp_path / "run").exists()


def test_evaluation_refuses_a_model_of_another_scene_and_accepts_one_of_the_same():
    from test_ac_world_model import tiny_encoder, tiny_predictor
    from worldjepa.planning.ac_world_model import ACWorldModel
    from worldjepa.stages.evaluate import check_world_model

    trained_on = {"env_id": "worldjepa/ArmPickPlace-v0", "seeds": [0, 1]}
    model = ACWorldModel(tiny_encoder(), tiny_predictor(), trained_on=trained_on)
    with pytest.raises(
        UserError, match="trained on worldjepa/ArmPickPlace-v0, the preset evaluates worldjepa/ArmReach"
    ):
        check_world_model(model, load_config("wm_arm_reach"), None)
    for preset in ("wm_arm_grasp", "wm_arm_push"):  # the block scene: one model plans every task in it
        check_world_model(model, load_config(preset), None)


@pytest.mark.parametrize("command", [["collect", "--env", "worldjepa/TwoRooms-v0", "--episodes", "1", "--out"],
                                     ["pretrain", "--run-dir"], ["demo", "--train", "--run-dir"]])  # fmt: skip
def test_an_output_folder_that_is_a_file_is_refused(tmp_path, capsys, command):
    (tmp_path / "file").write_text("keep me")
    assert "file is a file, not a folder" in _cli(capsys, *command, str(tmp_path / "file"))
    assert (tmp_path / "file").read_text() == "keep me"


# ------------------------------------------------------------------ environments
def test_a_bad_mujoco_gl_is_the_projects_one_line_error():
    import os
    import subprocess
    import sys

    env = dict(os.environ, MUJOCO_GL="bogus")
    done = subprocess.run(
        [sys.executable, "-m", "worldjepa", "envs"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: MUJOCO_GL='bogus' is not supported; set it to one of egl")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_variation_of_an_env_without_variations_is_refused(tmp_path, capsys):
    args = ["collect", "--env", "worldjepa/TwoRooms-v0", "--episodes", "1", "--out", str(tmp_path / "d")]
    assert "TwoRooms-v0 has no visual variations" in _cli(capsys, *args, "--variation", "colors")
    with pytest.raises(UserError, match="TwoRooms-v0 has no visual variations"):
        load_config("wm_two_rooms", ["env.variation=colors"])
    with pytest.raises(UserError, match="unknown variation 'sepia'"):
        load_config("wm_arm_reach", ["env.variation=sepia"])


# ------------------------------------------------------------------ convert and model folders
@pytest.fixture
def model_folder(tmp_path) -> Path:
    """A worldjepa folder with an encoder and a predictor (what `--part encoder` in place would cut)."""
    from test_ac_world_model import tiny_encoder, tiny_predictor
    from worldjepa.interop.worldjepa_format import save_modules

    return save_modules(tmp_path / "model", {"encoder": tiny_encoder(), "predictor": tiny_predictor()})


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    from test_ac_world_model import tiny_encoder, tiny_predictor
    from worldjepa.interop.worldjepa_format import save_modules

    root = tmp_path_factory.mktemp("saved") / "model"
    return save_modules(root, {"encoder": tiny_encoder(), "predictor": tiny_predictor()})


def _convert(capsys, src: Path, dst: Path, *extra: str) -> str:
    return _cli(capsys, "convert", str(src), str(dst), "--from", "worldjepa", "--to", "worldjepa", *extra)


def test_convert_in_place_is_refused_even_with_overwrite(model_folder, capsys):
    before = (model_folder / "model.safetensors").read_bytes()
    err = _convert(capsys, model_folder, model_folder, "--part", "encoder", "--overwrite")
    assert "holds the source" in err
    assert (model_folder / "model.safetensors").read_bytes() == before


def test_convert_into_an_existing_model_folder_needs_overwrite(model_folder, tmp_path, capsys):
    from worldjepa.cli import main
    from worldjepa.interop.worldjepa_format import read_config

    other = tmp_path / "other"
    shutil.copytree(model_folder, other)
    assert "other already exists; pass --overwrite" in _convert(
        capsys, model_folder, other, "--part", "encoder"
    )
    assert set(read_config(other)["modules"]) == {"encoder", "predictor"}
    (tmp_path / ".other.crashed.tmp").mkdir()  # left by an earlier convert that was killed
    argv = ["convert", str(model_folder), str(other), "--from", "worldjepa", "--to", "worldjepa"]
    assert main([*argv, "--part", "encoder", "--overwrite"]) == 0
    assert set(read_config(other)["modules"]) == {"encoder"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "other"]  # no temporaries left


def test_convert_to_a_destination_that_is_a_file(model_folder, tmp_path, capsys):
    (tmp_path / "file").write_text("keep me")
    assert "file is a file, not a model folder" in _convert(capsys, model_folder, tmp_path / "file")
    assert (tmp_path / "file").read_text() == "keep me"


def test_a_full_disk_during_convert_says_so_and_keeps_the_old_folder(
    model_folder, tmp_path, monkeypatch, capsys
):
    from worldjepa.interop import worldjepa_format

    shutil.copytree(model_folder, tmp_path / "old")
    before = (tmp_path / "old" / "model.safetensors").read_bytes()

    def full_disk(weights, path, metadata=None):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(worldjepa_format, "save_file", full_disk)
    err = _convert(capsys, model_folder, tmp_path / "old", "--overwrite")
    assert "disk full while writing" in err and "what was there before is intact" in err
    assert (tmp_path / "old" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "old"]


def test_a_folder_written_whole_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        with new_folder(tmp_path / "model") as tmp:
            (tmp / "weights").write_bytes(b"0")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755  # not mkdtemp's 0700
    assert stat.S_IMODE((tmp_path / "model" / "weights").stat().st_mode) == 0o644


def test_non_finite_weights_are_never_saved(tmp_path):
    from test_ac_world_model import tiny_encoder
    from worldjepa.interop.worldjepa_format import save_modules

    encoder = tiny_encoder()
    with torch.no_grad():
        encoder.norm.weight[0] = float("nan")
    with pytest.raises(
        UserError, match="1 weight tensors hold NaN or infinite values \\(e.g. encoder.norm.weight"
    ):
        save_modules(tmp_path / "m", {"encoder": encoder})
    assert list(tmp_path.iterdir()) == []


@FUZZ
@given(
    st.sampled_from(["config.json", "model.safetensors"]),
    st.sampled_from(["truncate", "replace", "overwrite"]),
    st.floats(0, 1),
    st.binary(max_size=32),
)
def test_fuzzed_model_folders_load_or_raise_a_user_error(saved_model, name, kind, position, junk):
    from worldjepa.interop.worldjepa_format import load_modules

    with tempfile.TemporaryDirectory() as tmp:
        root = _damaged_copy(saved_model, tmp, name, kind, position, junk)
        try:
            load_modules(root)
        except UserError as error:
            assert str(error) and "\n" not in str(error)


def test_a_nan_encoder_leaves_no_embedding_cache(folder, tmp_path):
    from worldjepa.data.embedding_cache import build_embedding_cache

    class NaNFrames:
        tokens_per_frame, grid = 1, (1, 1)

        def __call__(self, pixels):
            return torch.full((len(pixels), 1, 4), float("nan"))

        def fingerprint(self) -> str:
            return "nan"

        def to(self, device):
            return self

    with pytest.raises(UserError, match="NaN or infinite latents for episode 0"):
        build_embedding_cache(folder, NaNFrames(), tmp_path / "cache")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ image folders
def _image_folder(root: Path, corrupt: bytes) -> Path:
    """8 images in two classes; the last one (read by the loader's worker, after the mask picture took
    the first four in this process) holds `corrupt`."""
    from PIL import Image

    for i in range(8):
        (root / "train" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((16, 16, 3), 30 * i, np.uint8)).save(
            root / "train" / f"c{i % 2}" / f"{i}.jpg"
        )
    (root / "train" / "c1" / "7.jpg").write_bytes(corrupt)
    return root


_TINY_IJEPA = ["data.dataset=folder", "model.embed_dim=32", "model.depth=1",
               "model.num_heads=2", "model.predictor_embed_dim=16", "model.predictor_depth=1",
               "model.predictor_num_heads=2", "train.batch_size=4", "train.total_steps=2", "train.num_workers=1",
               "train.precision=fp32", "train.progress_bar=false", "train.tensorboard=false"]  # fmt: skip


def test_a_corrupt_jpeg_read_in_a_loader_worker_is_one_line(tmp_path, capsys):
    root = _image_folder(tmp_path / "images", corrupt=b"\xff\xd8\xff\xe0 not really a jpeg")
    err = _cli(capsys, "pretrain", *_TINY_IJEPA, f"data.root={root}", "--run-dir", str(tmp_path / "run"))
    assert "could not read image" in err and "7.jpg" in err and "Traceback" not in err


def test_an_empty_image_file_is_refused_before_work(tmp_path, capsys):
    root = _image_folder(tmp_path / "images", corrupt=b"")
    err = _cli(capsys, "pretrain", *_TINY_IJEPA, f"data.root={root}", "--run-dir", str(tmp_path / "run"))
    assert "7.jpg is empty (0 bytes)" in err and not (tmp_path / "run").exists()
