"""Training checkpoints: atomic writes, safe loads, clear errors.

A checkpoint is a dict of tensors and primitive containers only, so it loads with
`torch.load(weights_only=True)` (no arbitrary code runs on load):
  format, version, step, epoch, model (the method's state_dict, EMA target included),
  optimizer, rng (one `rng.get_rng_state()` per rank), train_config, config.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from worldjepa.errors import UserError
from worldjepa.files import disk_full, disk_full_error, remove_stale

FORMAT = "worldjepa-train"
VERSION = 1
LATEST = "latest.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` (plus format/version) so that `path` is either the old file or the complete new one.

    Writes a temporary file in the same directory, fsyncs it, then `os.replace`s it over `path`;
    a crash mid-write never leaves a truncated checkpoint behind, and a full disk is a UserError that
    leaves the previous file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        full = disk_full(error, path.parent)
        Path(tmp).unlink(missing_ok=True)
        if full:
            raise disk_full_error(path) from None
        raise
    if hasattr(os, "O_DIRECTORY"):  # persist the rename itself (POSIX)
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def remove_stale_checkpoints(directory: str | Path) -> None:
    """Remove the temporary files of saves that a crash (kill -9, power loss) interrupted."""
    remove_stale(directory, ".*.pt.*.tmp")


def keep_copy(path: str | Path, keep_path: str | Path) -> None:
    """Keep the current `path` under `keep_path` (a hard link when possible: no extra disk, no copy time).

    Safe because `save_checkpoint` replaces `path` with a new file rather than rewriting it.
    """
    keep_path = Path(keep_path)
    keep_path.unlink(missing_ok=True)
    try:
        os.link(path, keep_path)
    except OSError:
        shutil.copyfile(path, keep_path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a worldjepa training checkpoint; `UserError` if missing, corrupt or foreign."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; check the path or start without resume")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        msg = f"checkpoint {path} is corrupt or unreadable ({first}); delete it or pick another"
        raise UserError(msg) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a worldjepa training checkpoint (official weights load via worldjepa.interop)"
        )
    if ckpt.get("version") != VERSION:
        raise UserError(
            f"checkpoint {path} has format version {ckpt.get('version')}; this worldjepa reads {VERSION}"
        )
    return ckpt


def load_model_state(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], path: str | Path) -> None:
    """`model.load_state_dict(strict=True)`, turning key or shape mismatches into one clear `UserError`."""
    own = model.state_dict()
    missing = sorted(own.keys() - state_dict.keys())
    unexpected = sorted(state_dict.keys() - own.keys())
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), e.g. {missing[0]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[0]}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es), e.g. {shapes[0]}")
    if problems:
        raise UserError(
            f"checkpoint {path} does not match the model ({'; '.join(problems)}); "
            "use the config the checkpoint was trained with"
        )
    model.load_state_dict(state_dict)
