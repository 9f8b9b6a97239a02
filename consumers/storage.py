"""Writing result files atomically and durably, so a reader never sees half a file, a
redelivered image rewrites the same file instead of adding a second one, and a result is on
disk before its entry is acknowledged."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from faces.schemas.result import dumps

# Every file written here holds a person's face or photo (results: boxes, landmarks, ages;
# pictures; uploads; exports), so it is readable by its owner only, like the Redis files that
# hold the same data; folders created for them too. A web server or another user that must read
# them gets access by the operator's choice (a group, an ACL), never by default.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700

# A file name's limit on Linux filesystems (ext4, xfs, btrfs, tmpfs), counted in bytes (UTF-8).
NAME_MAX_BYTES = 255
# The temporary file beside NAME is ".NAME.<8 random characters of mkstemp>.tmp".
TEMP_SUFFIX = ".tmp"
TEMP_EXTRA_BYTES = len(".") + len(".") + 8 + len(TEMP_SUFFIX)
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX), re.DOTALL)
# A temporary file this old belongs to no write in progress (a write takes milliseconds): a
# writer killed mid-write left it, and it is swept (`sweep_temp_files`).
STALE_TEMP_S = 3600.0


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder, a rename, and an fsync of the
    folder: without the last, a power cut after the acknowledgement could lose the rename.
    Owner-only: the file 0600, the folders it creates 0700."""
    make_private_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), PRIVATE_FILE_MODE & ~_UMASK)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def make_private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents owner-only (0700); mkdir(parents=True) would make
    the parents with the default mode."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for each in reversed(missing):
        each.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)


def sweep_temp_files(folder: Path, older_than_s: float = STALE_TEMP_S) -> int:
    """Delete the temporary files of `write_atomic` in `folder` that are older than
    `older_than_s`: a writer killed mid-write leaves its one, and nothing else would ever remove
    it. A younger one may be a sibling's write in progress (sinks sharing the folder) and stays.
    How many were deleted."""
    deadline = time.time() - older_than_s
    swept = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0  # no folder (yet), or none to read: a write will say so, not the sweep
    for entry in entries:
        if not _TEMP_NAME.fullmatch(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < deadline:
                os.unlink(entry.path)
                swept += 1
        except OSError:
            pass  # a sibling swept it first, or it is not ours to delete: left
    return swept


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


def patch_if(path: Path, change: Callable[[dict], dict | None]) -> bool:
    """Rewrite the JSON document at `path` as `change` makes it (None: leave it), under the
    folder's lock like `write_if`, so a sink writing a newer result meanwhile is not undone.
    True when rewritten; False when absent, unreadable or left as it was."""
    with _folder_lock(path.parent):
        current = _read_json(path)
        changed = change(current) if current is not None else None
        if changed is None:
            return False
        write_atomic(path, dumps(changed).encode())
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
