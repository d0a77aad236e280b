"""Nothing lost, nothing silent: each case of issue 17 (a careless or hostile user) as a regression test,
and property-based fuzzing of config overrides and trajectory folders: bad input gives a one-line
UserError (exit 2 from the CLI), never a traceback, a silent wrong result or lost files."""

from __future__ import annotations

import errno
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddp_worker import ToyDataset, ToyMethod, toy_config
from worldjepa.config import read_yaml
from worldjepa.data.trajectories import TrajectoryDataset, TrajectoryWriter
from worldjepa.errors import UserError
from worldjepa.presets import PretrainPreset, WorldModelPreset, load_config
from worldjepa.train import Trainer
from worldjepa.train.checkpoint import LATEST, load_checkpoint, save_checkpoint

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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


# a few real keys of each kind, so that the fuzzer also reaches the value checks behind the keys
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
@given(st.lists(st.one_of(st.text(max_size=20), st.tuples(st.sampled_from(_KEYS), _VALUES)), max_size=3))
def test_fuzzed_pretraining_overrides_raise_only_user_errors(items):
    overrides = [item if isinstance(item, str) else f"{item[0]}={item[1]}" for item in items]
    try:
        load_config("vjepa2_tiny", overrides)
    except UserError as error:
        assert str(error)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(_WM_KEYS), _VALUES), max_size=3))
def test_fuzzed_world_model_overrides_raise_only_user_errors(items):
    try:
        load_config("wm_arm_reach", [f"{key}={value}" for key, value in items])
    except UserError as error:
        assert str(error)


# ------------------------------------------------------------------ training: NaN guards, checkpoints
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
        TrajectoryVideo(damaged, num_frames=2, frame_step=1)
    assert "longer episodes" not in str(error.value)


@pytest.mark.parametrize(
    "content", [b"", b"{not json", b"\xff\xfe\xfd", b"[1, 2]", b'{"format": "worldjepa-trajectories"}']
)
def test_corrupt_meta_json_is_one_line(damaged, content):
    (damaged / "meta.json").write_bytes(content)
    with pytest.raises(UserError, match="meta.json") as error:
        TrajectoryDataset(damaged, clip_length=2)
    assert "\n" not in str(error.value)


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


def _damage(data: bytes, kind: str, position: float, junk: bytes) -> bytes:
    cut = int(position * len(data))
    if kind == "truncate":
        return data[:cut]
    if kind == "replace":
        return junk
    return data[:cut] + junk + data[cut + len(junk) :]  # overwrite a stretch in place


@FUZZ
@given(
    st.sampled_from(_FILES),
    st.sampled_from(["truncate", "replace", "overwrite"]),
    st.floats(0, 1),
    st.binary(max_size=64),
)
def test_fuzzed_trajectory_folders_load_or_raise_a_user_error(folder, name, kind, position, junk):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        shutil.copytree(folder, root)
        path = root / name
        path.write_bytes(_damage(path.read_bytes(), kind, position, junk))
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


def test_fuzz_fixture_is_untouched(folder):
    assert TrajectoryDataset(folder, clip_length=2).num_episodes == 4
