"""Opening a file found in a folder without ever leaving that folder.

`O_NOFOLLOW` alone guards only a path's last part: a folder on the path swapped for a symlink
after the file was listed would still be followed, and the bytes of a file outside the drop
folder read. Here the folder is opened once and every part below it relative to the folder
before it, each with `O_NOFOLLOW`, so no link anywhere below the folder is followed; and the
descriptor opened must be the very file the listing saw (its device and inode).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from faces.errors import FacesError
from faces.producer.files import NotARegularFile

FileId = tuple[int, int]  # (st_dev, st_ino): which file, whatever its name
Opener = Callable[[str, int], int]  # what os.open / open(opener=...) take: (path, flags) -> fd

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# A symlink opened with O_DIRECTORY | O_NOFOLLOW fails with ENOTDIR (Linux) or ELOOP.
_NOT_A_FOLDER = (errno.ENOTDIR, errno.ELOOP)


class NotTheListedFile(FacesError, OSError):
    """The file opened under a listed name is another file than the one listed.

    Cause: it was replaced (renamed over, or a folder on its path swapped) after the listing.
    Remedy: none needed; the watcher lets the new file settle before reading it.
    """

    internal = True  # the watcher skips the file until it is listed again


def file_id(st: os.stat_result) -> FileId:
    return st.st_dev, st.st_ino


def opener(folder: str, expected: FileId) -> Opener:
    """An opener for `files.read_job`: opens a path inside `folder` with `open_beneath` and
    checks that the descriptor is the file `expected` (NotTheListedFile otherwise)."""

    def open_listed(path: str, flags: int) -> int:
        fd = open_beneath(folder, path, flags)
        if file_id(os.fstat(fd)) != expected:
            os.close(fd)
            raise NotTheListedFile(errno.ESTALE, "replaced since it was listed", path)
        return fd

    return open_listed


def open_beneath(folder: str, path: str, flags: int) -> int:
    """A descriptor on `path`, which must lie inside `folder`, opened with `flags` and no link
    followed below `folder`: NotARegularFile if a part of the path is a link (or not a folder),
    ValueError for a path that is not inside `folder`."""
    parts = _parts_below(folder, path)
    fd = os.open(folder, _FOLDER_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, _FOLDER_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in _NOT_A_FOLDER:
                    raise NotARegularFile(exc.errno, f"{part!r} on its path is a link or not a folder", path) from exc
                raise
            os.close(fd)
            fd = inner
        return os.open(parts[-1], flags | os.O_NOFOLLOW, dir_fd=fd)
    finally:
        os.close(fd)


def _parts_below(folder: str, path: str) -> list[str]:
    relative = os.path.relpath(path, folder)
    parts = relative.split(os.sep)
    if os.path.isabs(relative) or not parts or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{path} is not inside {folder}")
    return parts
