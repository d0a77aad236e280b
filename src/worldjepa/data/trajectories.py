"""On-disk trajectories of an env: chunked, appendable, crash-safe, read by memory mapping.

Layout of a trajectory folder:

    meta.json              format version, env id, variation (of the first episodes), image size, action,
                           state and object dims
    chunk_000000/          whole episodes, written once:
        frames.npy         uint8   [N, H, W, 3]
        actions.npy        float32 [N, A]   actions[t] is applied to frame t; the last frame of each
                                            episode has no successor and stores a zero row
        states.npy         float32 [N, S]
        objects.npy        float32 [N, O]   only with object_dim O > 0: the simulator's state of the
                                            objects (`GoalEnv.object_state`), NaN where it has none; for
                                            fitting the modules that read objects from images, never a
                                            planner's input
        episodes.json      per episode: length, reset seed, variation, policy
    chunk_000001/ ...

A chunk is written into `chunk_XXXXXX.tmp/` and renamed when complete, so a killed writer leaves at
most a `.tmp` folder, which readers ignore and the next writer removes. Readers memory-map the arrays,
so a dataset far larger than RAM costs only the pages a clip touches.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from worldjepa.errors import UserError
from worldjepa.files import disk_full, disk_full_error

FORMAT = "worldjepa-trajectories"
VERSION = 1
_ARRAYS = ("frames", "actions", "states")


def _write_json_atomic(path: Path, content: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, indent=2))
    os.replace(tmp, path)


def read_meta(root: str | Path) -> dict[str, Any]:
    """The `meta.json` of a trajectory folder, checked; a missing, corrupt or foreign one is a UserError."""
    path = Path(root) / "meta.json"
    if not path.is_file():
        raise UserError(
            f"{root} has no meta.json, so it is not a trajectory folder; make one with `worldjepa collect`"
        )
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is corrupt ({_reason(error)}); re-collect the folder") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        found = (meta.get("format"), meta.get("version")) if isinstance(meta, dict) else (None, None)
        raise UserError(
            f"{path} has format {found[0]!r} version {found[1]!r}; this worldjepa reads {FORMAT!r} version {VERSION}"
        )
    size = meta.get("image_size")
    sizes_ok = isinstance(size, list) and len(size) == 2 and all(_positive_int(v) for v in size)
    dims_ok = all(_positive_int(meta.get(k)) for k in ("action_dim", "state_dim"))
    dims_ok = dims_ok and (_positive_int(meta.get("object_dim")) or meta.get("object_dim", 0) == 0)
    if not (sizes_ok and dims_ok and isinstance(meta.get("env_id"), str)):
        raise UserError(
            f"{path} is corrupt (env_id, image_size [H, W], action_dim and state_dim must be set); re-collect"
        )
    return meta


def check_env(root: str | Path, env_id: str, image_size: int) -> dict[str, Any]:
    """The folder's meta, refused when it was recorded in another env, or at another image size, than
    the preset's."""
    meta = read_meta(root)
    if meta["env_id"] != env_id:
        raise UserError(
            f"{root} holds trajectories of {meta['env_id']}, but the preset is for {env_id}; use the preset of "
            f"that env (-c) or data collected in {env_id}"
        )
    if meta["image_size"] != [image_size, image_size]:
        height, width = meta["image_size"]
        raise UserError(
            f"{root} holds {height}x{width} frames, but the preset's env.image_size is {image_size}; set "
            f"env.image_size={height} or collect at {image_size} px"
        )
    return meta


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _arrays_of(meta: dict[str, Any]) -> tuple[str, ...]:
    """The arrays a chunk of this folder holds: objects too when it records them."""
    return (*_ARRAYS, "objects") if meta.get("object_dim", 0) else _ARRAYS


def _reason(error: BaseException) -> str:
    """One line about what went wrong: the error's type and its first line."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _chunk_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("chunk_*") if p.is_dir() and not p.name.endswith(".tmp"))


class TrajectoryWriter:
    """Append whole episodes to a trajectory folder, one chunk per `chunk_frames` frames.

    Opening an existing folder appends new chunks after the last one; its meta must match, but for the
    variation: a folder may mix looks (e.g. the default scene and randomised lights), each episode records
    its own, and meta.json keeps the first collection's. One writer per folder at a time. Use as a context
    manager (or call `close`) to write the last chunk.
    """

    def __init__(
        self,
        root: str | Path,
        env_id: str,
        image_size: tuple[int, int],
        action_dim: int,
        state_dim: int,
        variation: str = "default",
        chunk_frames: int = 4096,
        object_dim: int = 0,
    ) -> None:
        self.root = Path(root)
        self.meta = {
            "format": FORMAT,
            "version": VERSION,
            "env_id": env_id,
            "variation": variation,
            "image_size": [int(image_size[0]), int(image_size[1])],
            "action_dim": int(action_dim),
            "state_dim": int(state_dim),
            "object_dim": int(object_dim),
        }
        self.chunk_frames = int(chunk_frames)
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"{self.root} is a file, not a trajectory folder; pass a folder path")
        self.root.mkdir(parents=True, exist_ok=True)
        if (self.root / "meta.json").exists():
            existing = read_meta(self.root)
            diff = {
                k: (existing.get(k), v)
                for k, v in self.meta.items()
                if k != "variation" and existing.get(k, 0 if k == "object_dim" else None) != v
            }
            if diff:
                details = ", ".join(f"{k}: folder {old!r}, writer {new!r}" for k, (old, new) in diff.items())
                raise UserError(f"cannot append to {self.root}: meta differs ({details}); use a new folder")
        else:
            _write_json_atomic(self.root / "meta.json", self.meta)
        for stale in self.root.glob("chunk_*.tmp"):
            shutil.rmtree(stale)  # left by a writer that was killed mid-chunk
        existing_chunks = _chunk_dirs(self.root)
        self._next_chunk = int(existing_chunks[-1].name.split("_")[1]) + 1 if existing_chunks else 0
        self._buffer: list[tuple[dict[str, np.ndarray], dict[str, Any]]] = []
        self._buffered_frames = 0

    def add_episode(
        self,
        frames: np.ndarray,
        actions: np.ndarray,
        states: np.ndarray,
        seed: int,
        variation: str | None = None,
        policy: str = "",
        objects: np.ndarray | None = None,
    ) -> None:
        """Buffer one episode: frames uint8 [T, H, W, 3], actions [T-1, A] (between frames), states [T, S],
        and objects [T, O] (NaN allowed) when the folder records them."""
        frames = np.asarray(frames)
        actions = np.asarray(actions, dtype=np.float32).reshape(len(actions), -1)
        states = np.asarray(states, dtype=np.float32).reshape(len(states), -1)
        t = len(frames)
        h, w = self.meta["image_size"]
        a, s = self.meta["action_dim"], self.meta["state_dim"]
        if frames.dtype != np.uint8 or frames.shape[1:] != (h, w, 3):
            raise UserError(f"frames must be uint8 [T, {h}, {w}, 3], got {frames.dtype} {list(frames.shape)}")
        if t < 2:
            raise UserError(f"an episode needs at least 2 frames, got {t}")
        if actions.shape != (t - 1, a) or states.shape != (t, s):
            raise UserError(
                f"episode of {t} frames needs actions [{t - 1}, {a}] and states [{t}, {s}], "
                f"got {list(actions.shape)} and {list(states.shape)}"
            )
        for name, array in (("actions", actions), ("states", states)):
            if not np.all(np.isfinite(array)):
                raise UserError(f"episode (seed {seed}) has NaN or infinite {name}; fix the env or policy")
        padded = np.concatenate([actions, np.zeros((1, a), np.float32)])
        arrays = {"frames": frames, "actions": padded, "states": states}
        if self.meta["object_dim"]:
            o = self.meta["object_dim"]
            objects = None if objects is None else np.asarray(objects, dtype=np.float32).reshape(t, -1)
            if objects is None or objects.shape != (t, o):
                found = "none" if objects is None else list(objects.shape)
                raise UserError(
                    f"this folder records objects: an episode of {t} frames needs [{t}, {o}], got {found}"
                )
            arrays["objects"] = objects
        variation = variation or self.meta["variation"]
        info = {"length": t, "seed": int(seed), "variation": variation, "policy": policy}
        self._buffer.append((arrays, info))
        self._buffered_frames += t
        if self._buffered_frames >= self.chunk_frames:
            self.flush()

    def flush(self) -> None:
        """Write the buffered episodes as one chunk (nothing to do when the buffer is empty)."""
        if not self._buffer:
            return
        final = self.root / f"chunk_{self._next_chunk:06d}"
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)  # from a flush of this writer that was interrupted
        try:
            tmp.mkdir()
            for name in _arrays_of(self.meta):
                np.save(tmp / f"{name}.npy", np.concatenate([arrays[name] for arrays, _ in self._buffer]))
            episodes = [info for _, info in self._buffer]
            (tmp / "episodes.json").write_text(json.dumps({k: [e[k] for e in episodes] for k in episodes[0]}))
            os.replace(tmp, final)
        except BaseException as error:  # the buffer stays: a second flush (on close) can still write it
            full = disk_full(error, self.root)
            shutil.rmtree(tmp, ignore_errors=True)
            if full:
                raise disk_full_error(final) from None
            raise
        self._next_chunk += 1
        self._buffer, self._buffered_frames = [], 0

    def close(self) -> None:
        """Write the last chunk; also on an interrupt (Ctrl-C), so every finished episode is kept."""
        self.flush()

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Chunk:
    path: Path
    starts: np.ndarray  # first frame of each episode within the chunk
    lengths: np.ndarray
    seeds: list[int]
    variations: list[str]
    policies: list[str]


def _open_chunk(path: Path, meta: dict[str, Any]) -> _Chunk:
    """Read a chunk's episode table and check its arrays against it; any problem is a UserError that
    names the chunk (a chunk is never skipped: training on part of the data would go unnoticed)."""
    try:
        table = json.loads((path / "episodes.json").read_text())
        columns = {key: list(table[key]) for key in ("length", "seed", "variation", "policy")}
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in _arrays_of(meta)}
    except Exception as error:  # noqa: BLE001 - np.load's header parser alone raises half a dozen types
        raise _corrupt(path, _reason(error)) from None
    integers = all(
        isinstance(v, int) and not isinstance(v, bool) for v in columns["length"] + columns["seed"]
    )
    strings = all(isinstance(v, str) for v in columns["variation"] + columns["policy"])
    lengths = np.asarray(columns["length"], dtype=np.int64) if integers else np.zeros(0, np.int64)
    if not (integers and strings) or len(lengths) == 0 or (lengths < 2).any():
        raise _corrupt(
            path, "episodes.json must list episodes of at least 2 frames, integer seeds, text labels"
        )
    if any(len(column) != len(lengths) for column in columns.values()):
        raise _corrupt(path, "the columns of episodes.json differ in length")
    n = int(lengths.sum())
    h, w = meta["image_size"]
    expected = {
        "frames": ((n, h, w, 3), np.uint8),
        "actions": ((n, meta["action_dim"]), np.float32),
        "states": ((n, meta["state_dim"]), np.float32),
        "objects": ((n, meta.get("object_dim", 0)), np.float32),
    }
    for name, (shape, dtype) in expected.items():
        if name not in arrays:
            continue
        if arrays[name].shape != shape or arrays[name].dtype != dtype:
            found = f"{arrays[name].dtype} {arrays[name].shape}"
            raise _corrupt(path, f"{name}.npy is {found}, expected {np.dtype(dtype)} {shape}")
    for name in ("actions", "states"):
        if not np.isfinite(arrays[name]).all():
            raise UserError(
                f"trajectory chunk {path} has NaN or infinite {name}; training on them would give a NaN "
                "model: delete the chunk or re-collect the folder"
            )
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return _Chunk(path, starts, lengths, columns["seed"], columns["variation"], columns["policy"])


def _corrupt(path: Path, reason: str) -> UserError:
    return UserError(
        f"trajectory chunk {path} is corrupt or truncated ({reason}); delete that chunk folder (its episodes "
        "are lost) or re-collect the folder"
    )


class ClipIndex:
    """Flat index over every clip that fits inside an episode: clip i -> (episode, first frame offset).

    A clip spans `span` consecutive frames (clip length and frame skip decide it); no clip crosses an
    episode boundary. Shared by the pixel clips here and the cached-latent clips of stage 2.
    """

    def __init__(self, episode_lengths: Sequence[int], span: int) -> None:
        counts = [max(int(length) - span + 1, 0) for length in episode_lengths]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(episode, offset of the clip's first frame in that episode); IndexError when out of range."""
        if not 0 <= index < len(self):
            raise IndexError(f"clip index {index} out of range for {len(self)} clips")
        episode = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return episode, index - int(self.offsets[episode])


class TrajectoryDataset(Dataset):
    """Fixed-length clips from a trajectory folder; no clip crosses an episode boundary.

    Item `i` is a dict:
      frames  uint8 [T, 3, H, W]  (channel-first; train with `.float() / 255` on the batch)
      actions float32 [T-1, k*A]  the k = `frame_skip` raw actions between consecutive sampled frames,
                                  concatenated in time order (lossless; DINO-WM / LeWM "action blocks")
      states  float32 [T, S]
    A chunk that cannot be read is a UserError naming it, raised when the dataset is opened.
    """

    def __init__(self, root: str | Path, clip_length: int, frame_skip: int = 1) -> None:
        if clip_length < 1 or frame_skip < 1:
            raise UserError(f"clip_length and frame_skip must be >= 1, got {clip_length} and {frame_skip}")
        self.root = Path(root)
        self.meta = read_meta(self.root)
        self.clip_length = int(clip_length)
        self.frame_skip = int(frame_skip)
        self.chunks = [_open_chunk(path, self.meta) for path in _chunk_dirs(self.root)]
        # One row per episode: (chunk index, episode index in chunk); clip counts give a flat clip index.
        self._episodes = [(c, e) for c, chunk in enumerate(self.chunks) for e in range(len(chunk.lengths))]
        span = (self.clip_length - 1) * self.frame_skip + 1
        self._clips = ClipIndex([self.chunks[c].lengths[e] for c, e in self._episodes], span)
        self._mmaps: dict[int, dict[str, np.ndarray]] = {}

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    @property
    def episode_seeds(self) -> list[int]:
        """The env reset seed of every episode, read from the chunk tables (no frames are loaded)."""
        return [int(self.chunks[c].seeds[e]) for c, e in self._episodes]

    @property
    def num_frames(self) -> int:
        return int(sum(chunk.lengths.sum() for chunk in self.chunks))

    def __len__(self) -> int:
        return len(self._clips)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_mmaps"] = {}  # memory maps are reopened in each DataLoader worker, never pickled
        return state

    def _arrays(self, chunk: int) -> dict[str, np.ndarray]:
        if chunk not in self._mmaps:
            path = self.chunks[chunk].path
            names = _arrays_of(self.meta)
            self._mmaps[chunk] = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in names}
        return self._mmaps[chunk]

    def episode(self, index: int) -> dict[str, Any]:
        """A whole episode as numpy arrays: frames [T, H, W, 3], actions [T-1, A], states [T, S], objects
        [T, O] when the folder records them, and its seed, variation and policy."""
        c, e = self._episodes[index]
        chunk = self.chunks[c]
        start, length = int(chunk.starts[e]), int(chunk.lengths[e])
        arrays = self._arrays(c)
        episode = {name: np.array(array[start : start + length]) for name, array in arrays.items()}
        episode["actions"] = episode["actions"][:-1]
        return {
            **episode,
            "seed": chunk.seeds[e],
            "variation": chunk.variations[e],
            "policy": chunk.policies[e],
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        episode, offset = self._clips.locate(index)
        c, e = self._episodes[episode]
        first = int(self.chunks[c].starts[e]) + offset
        k, t = self.frame_skip, self.clip_length
        arrays = self._arrays(c)
        frames = np.array(arrays["frames"][first : first + (t - 1) * k + 1 : k])
        actions = np.array(arrays["actions"][first : first + (t - 1) * k]).reshape(t - 1, -1)
        states = np.array(arrays["states"][first : first + (t - 1) * k + 1 : k])
        return {
            "frames": torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
            "actions": torch.from_numpy(actions),
            "states": torch.from_numpy(states),
        }
