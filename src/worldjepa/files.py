"""Writing outputs so that nothing is lost: whole folders or nothing, a full disk said as such, no
temporary files left from a crash, and no existing folder replaced unless the user asked.

A folder is written into a temporary sibling (`.<name>.<random>.tmp`) and renamed into place when
complete, so a crash or a full disk leaves the old folder as it was; the next write into the same
place removes temporaries an earlier crash left behind. (A crash between moving the old folder aside
and renaming the new one in leaves the old one as `.<name>.<random>.old`, which is never removed.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from worldjepa.errors import UserError

#: Below this much free space a failed write is taken to be a full disk: torch and numpy report a
#: short write without an errno ("unexpected pos", "N requested and M written").
_NEARLY_FULL_BYTES = 1 << 20


def disk_full(error: BaseException, directory: str | Path) -> bool:
    """Whether `error`, raised while writing into `directory`, comes from a full disk or quota."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    if not isinstance(error, OSError | RuntimeError):  # e.g. an interrupt: not the disk
        return False
    try:
        return shutil.disk_usage(directory).free < _NEARLY_FULL_BYTES
    except OSError:
        return False


def disk_full_error(path: str | Path) -> UserError:
    return UserError(
        f"disk full while writing {path}; what was there before is intact: free some space and retry"
    )


def remove_stale(directory: str | Path, pattern: str) -> None:
    """Remove what an earlier, crashed write left in `directory` under `pattern` (a glob)."""
    for path in Path(directory).glob(pattern):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def check_new_folder(directory: str | Path, overwrite: bool, what: str = "folder") -> Path:
    """Refuse, before any work, a destination that is a file, or a non-empty folder without `overwrite`."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} is a file, not a {what}; pass a folder path")
    if directory.is_dir() and any(directory.iterdir()) and not overwrite:
        raise UserError(f"{directory} already exists; pass --overwrite to replace it, or pick a new {what}")
    return directory


def current_umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def new_folder(directory: str | Path, overwrite: bool = False, what: str = "folder") -> Iterator[Path]:
    """Write a folder whole or not at all: yields a temporary sibling to fill, which then replaces
    `directory` (refused when it holds something and `overwrite` is off). On any error, the temporary
    is removed and `directory` is untouched; a full disk is a UserError saying so."""
    directory = check_new_folder(directory, overwrite, what)
    directory.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(directory.parent, f".{directory.name}.*.tmp")
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp"))
    try:
        yield tmp
    except BaseException as error:
        full = disk_full(error, directory.parent)
        shutil.rmtree(tmp, ignore_errors=True)
        if full:
            raise disk_full_error(directory) from None
        raise
    umask = current_umask()  # mkdtemp makes the folder private (0700): give it the usual permissions
    for path in [tmp, *tmp.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
    if directory.is_dir():
        old = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".old"))
        os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, directory)
