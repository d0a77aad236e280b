"""Frame latents of a trajectory folder, computed once: the data of action-conditioned post-training.

The stage-1 encoder is frozen during post-training, so encoding every frame at every step would
repeat the same work each epoch. `build_embedding_cache` encodes each frame once (alone, batched,
without gradients, optionally under bf16 autocast) with a frame encoder (`worldjepa.nn.frame_encoder`;
any module with the `FrameLatents` attributes) and writes one safetensors file per episode:

    cache_dir/
        meta.json                 format, fingerprint, token grid, dims, episode lengths
        episode_000000.safetensors  z float [T, N, D], actions float32 [T-1, A], states float32 [T, S]

The fingerprint hashes the encoder (architecture + weights), the pooling and normalisation, and the
trajectory folder (meta, episode tables, array sizes and modification times). A cache whose
fingerprint differs is rebuilt, never reused; a build goes to a temporary folder and is renamed when
complete, so an interrupted build (or a full disk) leaves no half cache, and latents that are not
finite are refused.

`EmbeddingClips` serves clips with the clip indexing of `TrajectoryDataset` (same order and count for
clip_length = T + 1 and the same frame_skip): clips never cross an episode, and the k = frame_skip
raw actions between two sampled frames are concatenated.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import Dataset

from worldjepa.data.trajectories import ClipIndex, TrajectoryDataset, read_meta
from worldjepa.errors import UserError
from worldjepa.files import new_folder
from worldjepa.train.device import autocast

FORMAT = "worldjepa-embeddings"
VERSION = 1
DTYPES = {"float32": torch.float32, "float16": torch.float16}


class FrameLatents(Protocol):
    """What the cache needs of a frame encoder: pixels -> latents, and what decides those latents."""

    tokens_per_frame: int | str
    grid: tuple[int, int]

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor: ...

    def fingerprint(self) -> str: ...

    def to(self, device: torch.device) -> FrameLatents: ...


def trajectories_fingerprint(root: str | Path) -> str:
    """sha256 of a trajectory folder's meta, episode tables and array sizes / mtimes (not the pixels:
    any rewrite of an array changes its mtime, and hashing every frame would cost a full read)."""
    root = Path(root)
    read_meta(root)
    digest = hashlib.sha256((root / "meta.json").read_bytes())
    for chunk in sorted(p for p in root.glob("chunk_*") if p.is_dir() and not p.name.endswith(".tmp")):
        digest.update(chunk.name.encode())
        for path in sorted(chunk.iterdir()):
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        digest.update((chunk / "episodes.json").read_bytes())
    return digest.hexdigest()


def _episode_path(cache_dir: Path, index: int) -> Path:
    return cache_dir / f"episode_{index:06d}.safetensors"


def build_embedding_cache(
    trajectories: str | Path,
    frame_encoder: FrameLatents,
    cache_dir: str | Path,
    batch_size: int = 64,
    precision: str = "fp32",
    device: torch.device | str = "cpu",
    dtype: str = "float32",
) -> Path:
    """Encode every frame of `trajectories` into `cache_dir` unless an up-to-date cache is there.

    dtype: storage of the latents, "float32" or "float16" (half the disk; fine for L1 targets).
    Returns `cache_dir`.
    """
    if dtype not in DTYPES:
        raise UserError(f"embedding cache dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    cache_dir = Path(cache_dir)
    fingerprint = hashlib.sha256(
        f"{frame_encoder.fingerprint()}:{trajectories_fingerprint(trajectories)}:{dtype}".encode()
    ).hexdigest()
    meta_path = cache_dir / "meta.json"
    if meta_path.is_file():
        if _fingerprint_of(meta_path) == fingerprint:
            return cache_dir
        warnings.warn(
            f"embedding cache {cache_dir} is stale (encoder or data changed); rebuilding", stacklevel=2
        )

    run_device = torch.device(device)
    frame_encoder = frame_encoder.to(run_device)
    dataset = TrajectoryDataset(trajectories, clip_length=1)
    lengths = []
    with new_folder(cache_dir, overwrite=True, what="embedding cache") as tmp:
        for index in range(dataset.num_episodes):
            episode = dataset.episode(index)
            pixels = torch.from_numpy(episode["frames"])  # uint8 [T, H, W, 3]
            latents = []
            for start in range(0, len(pixels), batch_size):
                with torch.inference_mode(), autocast(run_device, precision):
                    latents.append(frame_encoder(pixels[start : start + batch_size].to(run_device)).cpu())
            z = torch.cat(latents)
            if not torch.isfinite(z).all():  # a NaN cache would train a NaN predictor
                raise UserError(
                    f"the encoder gives NaN or infinite latents for episode {index} of {trajectories}: its "
                    "weights are broken (a diverged stage 1?); nothing was cached"
                )
            arrays = {
                "z": z.to(DTYPES[dtype]).contiguous(),
                "actions": torch.from_numpy(episode["actions"]),
                "states": torch.from_numpy(episode["states"]),
            }
            save_file(arrays, str(_episode_path(tmp, index)))
            lengths.append(len(pixels))
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "fingerprint": fingerprint,
            "trajectories": str(Path(trajectories).resolve()),
            "tokens_per_frame": frame_encoder.tokens_per_frame,
            "grid": list(frame_encoder.grid),
            "embed_dim": int(arrays["z"].shape[-1]) if lengths else None,
            "action_dim": dataset.meta["action_dim"],
            "state_dim": dataset.meta["state_dim"],
            "lengths": lengths,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return cache_dir


def _fingerprint_of(meta_path: Path) -> str | None:
    """The fingerprint a cache was built for; None when its meta.json is unreadable (then it is rebuilt)."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return meta.get("fingerprint") if isinstance(meta, dict) else None


class EmbeddingClips(Dataset):
    """Clips of T + 1 cached frames, T = `context_length` predicted steps. Item `i` is a dict:

    z       float32 [T+1, N, D]  layer-normed frame latents
    actions float32 [T, k*A]     the k = frame_skip raw actions between consecutive sampled frames
    states  float32 [T+1, S]
    """

    def __init__(self, cache_dir: str | Path, context_length: int = 3, frame_skip: int = 1) -> None:
        if context_length < 1 or frame_skip < 1:
            raise UserError(
                f"context_length and frame_skip must be >= 1, got {context_length} and {frame_skip}"
            )
        self.cache_dir = Path(cache_dir)
        meta_path = self.cache_dir / "meta.json"
        if not meta_path.is_file():
            raise UserError(f"{cache_dir} is not an embedding cache; build it with build_embedding_cache")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT or self.meta.get("version") != VERSION:
            raise UserError(f"{meta_path} is not a {FORMAT} version {VERSION} cache; rebuild it")
        self.grid: tuple[int, int] = tuple(self.meta["grid"])
        self.context_length, self.frame_skip = int(context_length), int(frame_skip)
        self._clips = ClipIndex(self.meta["lengths"], self.context_length * self.frame_skip + 1)

    def __len__(self) -> int:
        return len(self._clips)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        episode, first = self._clips.locate(index)
        k, t = self.frame_skip, self.context_length
        last = first + t * k  # last sampled frame
        with safe_open(str(_episode_path(self.cache_dir, episode)), framework="pt") as f:
            z = f.get_slice("z")[first : last + 1][::k]
            actions = f.get_slice("actions")[first:last].reshape(t, -1)
            states = f.get_slice("states")[first : last + 1][::k]
        return {"z": z.float(), "actions": actions, "states": states}
