"""Writing outputs so that a file never claims to be complete when it is not.

Every output is written to a temporary file beside its destination and renamed over it, so a
full disk, a size limit or Ctrl-C leaves the previous file (or none), never a truncated one. A set
of files (`--out-dir`) is staged completely before any of it replaces the previous set. A device or
a pipe (`-o /dev/null`) is written to directly: there is nothing to replace.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

_HINTS = {
    errno.ENOSPC: "the disk is full; free some space or choose another location",
    errno.EDQUOT: "the disk quota is exceeded; free some space or choose another location",
    errno.EFBIG: "the file is over the size limit for this process (ulimit -f)",
    errno.EACCES: "you may not write there; choose a folder you own",
    errno.EPERM: "you may not write there; choose a folder you own",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.ENOTDIR: "a parent of this path is a file, not a folder",
    errno.EISDIR: "this path is a folder; give a file name",
}


class OutputError(Exception):
    """An output could not be written; the message names the path and what to do."""


def describe(path: Path, exc: OSError) -> str:
    why = exc.strerror or type(exc).__name__
    hint = _HINTS.get(exc.errno or 0)
    return f"cannot write {path}: {why}" + (f" ({hint})" if hint else "") + "; nothing was replaced"


def _stage(path: Path, text: str) -> Path:
    """Write `text` to a new temporary file in `path`'s folder and return it (removed again on failure)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename; raises OutputError naming the path.

    A path that exists and is not a regular file (`/dev/null`, `/dev/stdout`, a named pipe) is written
    to, never renamed over: replacing a device with a file (as root, `-o /dev/null`) breaks the machine.
    """
    if _special(path):
        try:
            with path.open("w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        except OSError as exc:
            raise OutputError(describe(path, exc)) from None
        return
    write_set({path: text})


def _special(path: Path) -> bool:
    try:
        return path.exists() and not path.is_file() and not path.is_dir()
    except OSError:
        return False


def write_set(files: Mapping[Path, str]) -> None:
    """Replace every file in `files`, or none of them: all are staged before the first rename."""
    staged: dict[Path, Path] = {}
    current = next(iter(files), Path("."))
    try:
        for path, text in files.items():
            current = path
            path.parent.mkdir(parents=True, exist_ok=True)
            staged[path] = _stage(path, text)
        for path, temp in staged.items():
            current = path
            os.replace(temp, path)
    except OSError as exc:
        raise OutputError(describe(current, exc)) from None
    finally:
        for temp in staged.values():
            temp.unlink(missing_ok=True)
