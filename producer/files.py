"""Which files are images, and how an image file becomes a job."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from schemas import events
from streams import names

# What OpenCV 4.x decodes (imgcodecs), plus GIF, which Pillow decodes for us.
IMAGE_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".webp", ".tif", ".tiff",
    ".pbm", ".pgm", ".ppm", ".pxm", ".pnm", ".sr", ".ras", ".jp2", ".gif", ".exr", ".hdr", ".pic",
    ".avif",
})
DEFAULT_MAX_IMAGE_BYTES = 64 << 20  # 64 MiB per file: larger ones get an error result unread
_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)
MAX_STEM_CHARS = 80


def is_image_name(path: Path) -> bool:
    """True for names that look like images (by suffix, case-insensitive); not hidden files."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def image_id_for(path: str, sha256: str) -> str:
    """`<stem>-<first 8 hex of sha256>`: the result file's name, safe whatever the input name.

    Only letters, digits, '_', '-' and '.' survive, with no leading dot, so the name can never
    climb out of the storage or output folder nor hide itself.
    """
    stem = Path(path.replace("\\", "/")).stem
    safe = _UNSAFE.sub("_", stem).lstrip(".")[:MAX_STEM_CHARS] or "image"
    return f"{safe}-{sha256[:8]}"


def read_job(path: str, size: int, max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> tuple[dict, bytes]:
    """(job, bytes) for an image file of `size` bytes. A file over `max_image_bytes` is not read:
    its job carries empty bytes and a FileTooLarge error, so it still ends with a result.
    OSError if the file cannot be read."""
    if size > max_image_bytes:
        job = events.with_error(job_for(path, b""), "submit", "FileTooLarge",
                                f"file is {size} bytes, over the {max_image_bytes}-byte limit")
        return job, b""
    data = Path(path).read_bytes()
    return job_for(path, data), data


class SourceChanged(ValueError):
    """The file behind a submitted image cannot give the same bytes again.

    Cause: it was deleted, moved, or rewritten since it was submitted (its sha256 differs).
    Remedy: submit the file as it is now with `faces submit`.
    """


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


def job_for(path: str, data: bytes, start_stage: str = "detect") -> dict:
    """A new job for the image bytes `data`, submitted as `path`."""
    sha = hashlib.sha256(data).hexdigest()
    job_id = uuid.uuid4().hex
    return events.new_job(
        job_id=job_id, image_id=image_id_for(path, sha), path=path, sha256=sha,
        size=len(data), blob=names.blob_key(job_id), submitted_at=time.time(),
        start_stage=start_stage,
    )
