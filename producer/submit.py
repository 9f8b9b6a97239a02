"""Submitting image files: read, hash, store once, publish, respecting backpressure."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
import structlog

from faces.producer.files import DEFAULT_MAX_IMAGE_BYTES, image_id_for, image_stem, new_job, read_job
from faces.producer.keep import keep_upload
from faces.schemas.events import check_metadata
from faces.streams import names, publishing

log = structlog.get_logger(__name__)

# The name of an upload that came without one (ops/web/body.py). Such uploads are kept under
# their image id (`_kept_stem`), so that the gallery and the pictures tell them apart.
UNNAMED = "upload"


@dataclass(frozen=True)
class Submitted:
    job_id: str
    image_id: str
    path: str


def submit_file(
    client: redis.Redis,
    path: Path,
    *,
    high_water: int = 0,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    should_stop: Callable[[], bool] = lambda: False,
    while_waiting: Callable[[], None] = lambda: None,
) -> Submitted:
    """Publish one image file. A file too large to hold is still published, as an error job
    (empty bytes, error set, sha256 of its real bytes), so that every submitted image ends with
    a result. `while_waiting` runs while backpressure holds the submission back.

    A named link is followed (the user chose it), but only a regular file is read:
    NotARegularFile for a FIFO, device or socket, which could block or never end.

    The path is stored absolute, so replay and visualize find the file from any folder."""
    publishing.wait_for_room(client, high_water, should_stop=should_stop, while_waiting=while_waiting)
    read = read_job(os.path.abspath(path), max_image_bytes, follow_symlinks=True)
    job = read.job
    publishing.publish_when_room(
        client, job, read.data, high_water, should_stop=should_stop, while_waiting=while_waiting
    )
    log.info("image.submitted", path=str(path), image_id=job["image_id"], job_id=job["job_id"])
    return Submitted(job["job_id"], job["image_id"], job["image"]["path"])


def submit_bytes(
    client: redis.Redis,
    data: bytes | bytearray,
    name: str,
    *,
    keep_in: Path,
    metadata: dict[str, str] | None = None,
    job_id: str | None = None,
    upload_ttl_s: int | None = None,
    high_water: int = 0,
) -> Submitted:
    """Publish image bytes received from elsewhere (the HTTP API), submitted as file `name`
    (its stem names the image; its suffix is kept; UNNAMED when it came without a name). A copy is kept first in
    KEEP_IN/<sha256>/<name>, the job's path, so that replay, visualize and pictures find the
    bytes as they find a submitted file's. `metadata` travels with the job into its result
    (EventError when it is not small string fields). `job_id`: the caller's (a new one
    without), for a caller that must know it before the job is published. `upload_ttl_s`: also
    record the job as the image's latest upload, in the same step. `high_water`: published
    only while fewer images are in flight, checked in the same atomic step (NoRoom otherwise,
    nothing published): no wait, the caller refuses instead (the HTTP API's 429)."""
    metadata = check_metadata(metadata) if metadata else None
    sha = hashlib.sha256(data).hexdigest()
    suffix = "".join(c for c in Path(name.replace("\\", "/")).suffix.lower() if c.isascii() and c.isalnum())
    path = Path(keep_in).absolute() / sha / (_kept_stem(name, sha) + (f".{suffix[:5]}" if suffix else ""))
    keep_upload(path, data)
    job = new_job(str(path), sha, len(data))
    job["image_id"] = image_id_for(name, sha)  # from the name given, whatever the kept file's name
    if job_id:
        job["job_id"] = job_id
    if metadata:
        job["metadata"] = metadata
    publishing.publish_image(client, job, data, stream=names.IMAGES, upload_ttl_s=upload_ttl_s, high_water=high_water)
    log.info("image.submitted", path=str(path), image_id=job["image_id"], job_id=job["job_id"])
    return Submitted(job["job_id"], job["image_id"], job["image"]["path"])


def _kept_stem(name: str, sha256: str) -> str:
    """The kept file's stem: the name's, or for an upload without a name (UNNAMED) its image
    id (upload-<8 hex>), since every such upload would otherwise be called upload.jpg."""
    stem = image_stem(name)
    return image_id_for(name, sha256) if stem == UNNAMED else stem
