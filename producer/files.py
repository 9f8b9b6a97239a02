"""Which files are images, and how an image file becomes a job."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from faces import settings as defaults
from faces.consumers.storage import NAME_MAX_BYTES, TEMP_EXTRA_BYTES
from faces.errors import FacesError
from faces.schemas import events, formats
from faces.schemas.job import Job

# What OpenCV 4.x decodes (imgcodecs), plus GIF, which Pillow decodes for us.
IMAGE_SUFFIXES = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".bmp",
        ".dib",
        ".webp",
        ".tif",
        ".tiff",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pxm",
        ".pnm",
        ".sr",
        ".ras",
        ".jp2",
        ".gif",
        ".exr",
        ".hdr",
        ".pic",
        ".avif",
    }
)
DEFAULT_MAX_IMAGE_BYTES = defaults.MAX_IMAGE_BYTES
_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)
ID_HASH_CHARS = formats.IMAGE_ID_HASH_CHARS
# Every file named after an image id must fit NAME_MAX_BYTES, in UTF-8 bytes (a CJK letter is 3):
# the longest is a result's temporary file, ".<stem>-<8 hex>.json.XXXXXXXX.tmp" (pictures end
# ".jpg", uploads ".<5 letters>": shorter).
LONGEST_ID_FILE_SUFFIX = ".json"
MAX_STEM_BYTES = NAME_MAX_BYTES - TEMP_EXTRA_BYTES - len(f"-{'0' * ID_HASH_CHARS}{LONGEST_ID_FILE_SUFFIX}")
MAX_STEM_CHARS = formats.IMAGE_ID_STEM_MAX_CHARS  # the older limit, kept: a name that fits both keeps its id


def is_image_name(path: Path) -> bool:
    """True for names that look like images (by suffix, case-insensitive); not hidden files."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def image_id_for(path: str, sha256: str) -> str:
    """`<stem>-<first 8 hex of sha256>`: the result file's name, safe whatever the input name.

    Only letters, digits, '_', '-' and '.' survive, with no leading dot, so the name can never
    climb out of the storage or output folder nor hide itself.
    """
    return formats.image_id(image_stem(path), sha256)


def image_stem(path: str) -> str:
    """The part of an image id that comes from the file's name (see `image_id_for`)."""
    stem = Path(path.replace("\\", "/")).stem
    safe = _UNSAFE.sub("_", stem).lstrip(".")[:MAX_STEM_CHARS]
    # Cut at MAX_STEM_BYTES without splitting a letter: only a partial last one is dropped.
    return safe.encode()[:MAX_STEM_BYTES].decode("utf-8", "ignore") or "image"


READ_CHUNK_BYTES = 1 << 20  # hashing reads this much at a time: a huge file never sits in memory


class NotARegularFile(FacesError, OSError):
    """A path named for reading is not a regular file.

    Cause: it is a symbolic link (never followed where the caller asked not to), a FIFO, a
    device, a socket or a folder; in a drop folder, possibly one swapped in after the file was
    first seen. Remedy: drop (or submit) the image file itself, not a link or a special file.
    """


@dataclass(frozen=True)
class FileRead:
    """One file read for publishing. `size` and `mtime_ns` come from fstat of the descriptor
    the bytes were read from, so they describe the very file that was read."""

    job: Job
    data: bytes  # what to store: the file's bytes, or b"" for a file too large to hold
    size: int
    mtime_ns: int
    complete: bool  # the bytes hashed are as many as fstat said: the file did not change size

    @property
    def analysable(self) -> bool:
        """False for an empty or too-large file: it can only end with an error result."""
        return self.job["error"] is None and self.job["image"]["bytes"] > 0


def read_job(
    path: str,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    *,
    follow_symlinks: bool = False,
    opener: Callable[[str, int], int] = os.open,
) -> FileRead:
    """Read the regular file at `path` into a new job, hashing every byte whatever the size.

    A file over `max_image_bytes` is hashed by streaming it and not kept: its job carries
    empty bytes and a FileTooLarge error, so it still ends with a result (and has an image id
    of its own). NotARegularFile for a link (unless `follow_symlinks`), FIFO, device, socket or
    folder; OSError if the file cannot be read. `opener(path, flags)` opens it (the watcher's
    opens nothing outside its folder: producer/beneath.py).
    """
    with _open_regular(path, follow_symlinks, opener) as (handle, st):
        # Known too large already: do not even gather the first max_image_bytes.
        keep = max_image_bytes if st.st_size <= max_image_bytes else -1
        sha, size, data = _hash_capped(handle, keep)
    job = new_job(path, sha, size)
    if data is None:
        job = events.with_error(
            job, "submit", "FileTooLarge", f"file is {size} bytes, over the {max_image_bytes}-byte limit"
        )
    return FileRead(job, data or b"", st.st_size, st.st_mtime_ns, complete=size == st.st_size)


def identify(path: str) -> tuple[str, str]:
    """(image id, sha256) of the regular file at `path` (a named link is followed), hashed
    without keeping its bytes: how `faces run` finds the images that already have a result."""
    with _open_regular(path, follow_symlinks=True) as (handle, _st):
        sha, _size, _data = _hash_capped(handle, -1)
    return image_id_for(path, sha), sha


@contextlib.contextmanager
def _open_regular(
    path: str, follow_symlinks: bool, opener: Callable[[str, int], int] = os.open
) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """The open file and its fstat; NotARegularFile for a link (unless `follow_symlinks`), FIFO,
    device, socket or folder."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below); it does
    # not change reads of a regular file. O_NOFOLLOW: a link is refused, not read through.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = opener(path, flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a symlink; a socket
            raise NotARegularFile(exc.errno, "not a regular file", path) from exc
        raise
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile(errno.EINVAL, "not a regular file", path)
        yield handle, st


def _hash_capped(handle: BinaryIO, limit: int) -> tuple[str, int, bytes | None]:
    """(sha256, bytes read, the bytes or None past `limit` bytes), reading in chunks to the end.
    A file that grew past the limit while read is caught here, not only by the fstat size."""
    digest = hashlib.sha256()
    size = 0
    chunks: list[bytes] | None = [] if limit >= 0 else None
    while chunk := handle.read(READ_CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
        if chunks is not None:
            chunks.append(chunk)
            if size > limit:
                chunks = None  # past the limit: keep nothing, hash on
    return digest.hexdigest(), size, None if chunks is None else b"".join(chunks)


def sha256_of_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in chunks (hashlib.file_digest is Python 3.11's, and
    the package runs on 3.10)."""
    with path.open("rb") as handle:
        return _hash_capped(handle, -1)[0]


class SourceChanged(FacesError, ValueError):
    """The file behind a submitted image cannot give the same bytes again.

    Cause: it was deleted, moved, or rewritten since it was submitted (its sha256 differs).
    Remedy: submit the file as it is now with `faces submit`.
    """

    internal = True  # a replay or picture reports it as its own reason


def read_same_bytes(path: str, sha256: str) -> bytes:
    """The bytes of `path`, provided they still hash to `sha256`; SourceChanged otherwise."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SourceChanged(f"cannot read {path}: {exc.strerror or exc}") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise SourceChanged(f"{path} changed since it was submitted (sha256 differs)")
    return data


@dataclass(frozen=True)
class Scan:
    """Files found under some paths: images to submit and how many others were skipped."""

    images: list[Path]
    skipped: int


def scan(paths: Iterable[Path]) -> Scan:
    """Image files named by `paths` (files, or folders walked recursively), in a stable order."""
    images: list[Path] = []
    skipped = 0
    for path in paths:
        for file in _walk(Path(path)):
            if is_image_name(file):
                images.append(file)
            else:
                skipped += 1
    return Scan(images, skipped)


def _walk(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
    elif path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and not any(p.startswith(".") for p in child.relative_to(path).parts):
                yield child


def job_for(path: str, data: bytes, start_stage: str = "detect") -> Job:
    """A new job for the image bytes `data`, submitted as `path`."""
    return new_job(path, hashlib.sha256(data).hexdigest(), len(data), start_stage)


def new_job(path: str, sha256: str, size: int, start_stage: str = "detect") -> Job:
    """A new job for a file of `size` bytes hashing to `sha256`, submitted as `path`."""
    return events.new_job(
        job_id=uuid.uuid4().hex,
        image_id=image_id_for(path, sha256),
        path=path,
        sha256=sha256,
        size=size,
        submitted_at=time.time(),
        start_stage=start_stage,
    )
