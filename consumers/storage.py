"""Writing result files atomically and durably, so a reader never sees half a file, a
redelivered image rewrites the same file instead of adding a second one, and a result is on
disk before its entry is acknowledged."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

# Results are meant to be read by other users and containers (a web server, the host user of a
# bind mount); mkstemp would leave them 0600. The process umask still applies.
FILE_MODE = 0o644


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder, a rename, and an fsync of the
    folder: without the last, a power cut after the acknowledgement could lose the rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), FILE_MODE & ~_UMASK)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_if(path: Path, data: bytes, should_replace: Callable[[dict], bool]) -> bool:
    """Write `data` unless `path` holds a JSON document for which `should_replace` says no.
    Sinks sharing a folder (several containers on one volume) take turns through a lock on
    the folder, so the check and the rename cannot interleave. True when written."""
    with _folder_lock(path.parent):
        current = _read_json(path)
        if current is not None and not should_replace(current):
            return False
        write_atomic(path, data)
        return True


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive flock on the folder itself (Linux allows it on a directory descriptor):
    no lock file is left among the results."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None  # absent or unreadable: nothing worth keeping
    return value if isinstance(value, dict) else None


def _current_umask() -> int:
    current = os.umask(0)  # the only way to read it; done once, at import, before any thread
    os.umask(current)
    return current


_UMASK = _current_umask()


def inside(folder: Path, name: str) -> Path:
    """`folder/name`, refusing any name that would land outside `folder`."""
    target = (folder / name).resolve()
    if target.parent != folder.resolve():
        raise ValueError(f"refusing to write {name!r} outside {folder}")
    return target
