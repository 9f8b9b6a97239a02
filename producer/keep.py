"""The HTTP API's kept uploads, `--uploads/<sha256>/<name>`: written owner-only (photos of people,
the same bytes Redis keeps in 0600 files), and deleted once older than the results that point
at them (`sweep_uploads`, run by the API: ops/web/retention.py)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from faces.consumers.storage import (
    PRIVATE_DIR_MODE,
    PRIVATE_FILE_MODE,
    make_private_dirs,
    sweep_temp_files,
    write_atomic,
)

_SHA_FOLDER = re.compile(r"[0-9a-f]{64}")  # the only folders of --uploads the sweep touches


def keep_upload(path: Path, data: bytes | bytearray) -> None:
    """Keep `data` at `path` (0600, its new folders 0700). Bytes kept already are not written
    again, but their time is renewed: an upload's age counts from its last submission."""
    for attempt in (1, 2):
        try:
            make_private_dirs(path.parent)
            with _locked(path.parent):  # the sweep cannot judge the file old, then delete it, meanwhile
                if path.exists():
                    os.utime(path)
                else:
                    write_atomic(path, bytes(data))
            return
        except FileNotFoundError:
            if attempt == 2:  # the sweep removed the folder between our check and our write: once
                raise


def sweep_uploads(folder: Path, max_age_s: float) -> int:
    """Delete the uploads under `folder` older than `max_age_s` (since written or last submitted
    again), their folders once empty, and temporary files of writes cut short; on the way, make
    what stays owner-only (uploads kept by older versions were 0644 in 0755 folders). How many
    uploads were deleted."""
    deadline = time.time() - max_age_s
    deleted = 0
    try:
        shas = [e for e in os.scandir(folder) if _SHA_FOLDER.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return 0
    for sha in shas:
        try:
            with _locked(Path(sha.path)):
                sweep_temp_files(Path(sha.path))
                _private(sha, PRIVATE_DIR_MODE)
                deleted += _sweep_one(sha.path, deadline)
                os.rmdir(sha.path)
        except FileNotFoundError:
            pass  # another API process on this folder swept it first
        except OSError:
            pass  # not empty: an upload younger than the deadline stays
    return deleted


def _sweep_one(sha_folder: str, deadline: float) -> int:
    """Delete the files of one upload folder older than `deadline`; the others made 0600."""
    deleted = 0
    for entry in os.scandir(sha_folder):
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if entry.stat(follow_symlinks=False).st_mtime < deadline:
                os.unlink(entry.path)
                deleted += 1
            else:
                _private(entry, PRIVATE_FILE_MODE)
        except FileNotFoundError:
            pass  # another API process swept it first
    return deleted


@contextlib.contextmanager
def _locked(sha_folder: Path) -> Iterator[None]:
    """An exclusive lock on one upload folder (flock on the folder itself), held by a keeper
    while it writes or renews a file there and by the sweep while it judges and deletes: without
    it the sweep could find a file old, the keeper renew it, and the sweep delete it anyway."""
    fd = os.open(sha_folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _private(entry: os.DirEntry, mode: int) -> None:
    """Take away what `mode` does not grant (the entry is no link: checked by the caller)."""
    if stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode) & ~mode:
        os.chmod(entry.path, mode)
