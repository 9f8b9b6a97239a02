"""The job event that flows between stages, as msgpack.

One event shape, `faces.job`, travels the whole pipeline: each stage adds its part (boxes,
points, ages) and hands it on. It never carries pixels: the bytes are stored once in Redis
(claim-check), under a key the stages derive from the job id (streams/names.py), so a large
photo is stored once, not once per stream, and an event names no key a stage would touch.

Version policy: decode accepts the versions in SUPPORTED_VERSIONS; anything else is an
EventError, which the runtime sends to the dead-letter stream instead of guessing.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import msgpack

from faces import settings as defaults
from faces.errors import FacesError
from faces.schemas.job import Job

SCHEMA = "faces.job"
VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
DEFAULT_MAX_EVENT_BYTES = defaults.MAX_EVENT_BYTES

# key -> allowed types; checked on decode so a stage never meets a malformed job.
_REQUIRED: dict[str, tuple[type, ...]] = {
    "schema": (str,),
    "version": (int,),
    "job_id": (str,),
    "image_id": (str,),
    "image": (dict,),
    "submitted_at": (float, int),
    "faces": (list,),
    "timings_ms": (dict,),
    "models": (dict,),
    "notes": (dict,),
    "error": (dict, type(None)),
}
_IMAGE_REQUIRED: dict[str, tuple[type, ...]] = {
    "path": (str,),
    "sha256": (str,),
    "bytes": (int,),
}
# Fields earlier releases wrote: accepted, and dropped on decode so that no stage passes them on.
# `blob` named the key of the image bytes, now derived from the job id (streams/names.py).
_RETIRED_IMAGE_FIELDS = ("blob",)


class EventError(FacesError, ValueError):
    """An entry that is not a valid job event.

    Cause: garbage bytes, an oversized entry, a wrong schema or an unknown version written into
    a stream by something other than this pipeline (or by a newer release).
    Remedy: none for the entry itself: the runtime moves it to the dead-letter stream with this
    message; check the producer that wrote it.
    """

    http_status = 400  # metadata a client sent; a bad entry is dead-lettered


def new_job(
    *,
    job_id: str,
    image_id: str,
    path: str,
    sha256: str,
    size: int,
    submitted_at: float,
    start_stage: str = "detect",
    metadata: dict[str, str] | None = None,
) -> Job:
    """A fresh job for a submitted image, ready for `encode`. `metadata` (the caller's own
    string fields, `check_metadata`) travels with the job into its result; no key without it."""
    job: Job = {
        "schema": SCHEMA,
        "version": VERSION,
        "job_id": job_id,
        "image_id": image_id,
        "image": {"path": path, "sha256": sha256, "bytes": size, "width": None, "height": None},
        "submitted_at": float(submitted_at),
        "start_stage": start_stage,
        "faces": [],
        "timings_ms": {},
        "models": {},
        "notes": {},
        "error": None,
    }
    if metadata:
        job["metadata"] = dict(metadata)
    return job


# The caller's metadata (an optional job field, copied into the result): small, flat, strings.
METADATA_MAX_KEYS = 16
METADATA_MAX_VALUE_CHARS = 1024
METADATA_MAX_BYTES = 4096  # keys and values together, UTF-8
_METADATA_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def check_metadata(metadata: Any) -> dict[str, str]:
    """`metadata` as a job carries it: a map of at most METADATA_MAX_KEYS keys (letters, digits,
    `_`, `-`, `.`, up to 64 characters) to strings of at most METADATA_MAX_VALUE_CHARS, at most
    METADATA_MAX_BYTES in all; EventError naming the offending part otherwise."""
    if not isinstance(metadata, dict):
        raise EventError(f"metadata is a {type(metadata).__name__}, expected an object of strings")
    if len(metadata) > METADATA_MAX_KEYS:
        raise EventError(f"metadata has {len(metadata)} keys, over the limit of {METADATA_MAX_KEYS}")
    size = 0
    for key, value in metadata.items():
        if not isinstance(key, str) or not _METADATA_KEY.fullmatch(key):
            raise EventError(f"metadata key {key!r} is not 1-64 letters, digits, '_', '-' or '.'")
        if not isinstance(value, str):
            raise EventError(f"metadata {key!r} is a {type(value).__name__}, expected a string")
        if len(value) > METADATA_MAX_VALUE_CHARS:
            raise EventError(f"metadata {key!r} has {len(value)} characters, over {METADATA_MAX_VALUE_CHARS}")
        size += len(key.encode()) + len(value.encode())
    if size > METADATA_MAX_BYTES:
        raise EventError(f"metadata is {size} bytes, over the {METADATA_MAX_BYTES}-byte limit")
    return dict(metadata)


def encode(job: Job, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> bytes:
    """Pack a job for XADD. Raises EventError if it would not pass `decode`."""
    _validate(job)
    data = msgpack.packb(job, use_bin_type=True)
    if len(data) > max_bytes:
        raise EventError(f"event is {len(data)} bytes, over the {max_bytes}-byte limit")
    return data


def decode(data: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Job:
    """Unpack and validate one entry's payload; EventError with a clear reason otherwise."""
    if not isinstance(data, (bytes, bytearray)):
        raise EventError(f"payload is {type(data).__name__}, expected bytes")
    if len(data) > max_bytes:
        raise EventError(f"event is {len(data)} bytes, over the {max_bytes}-byte limit")
    try:
        job = _unpack(data, max_bytes, strict_map_key=True)
    except (msgpack.UnpackException, ValueError, TypeError) as exc:
        raise EventError(f"not a msgpack event: {exc.__class__.__name__}: {exc}") from exc
    _validate(job)
    for retired in _RETIRED_IMAGE_FIELDS:
        job["image"].pop(retired, None)
    return job


def _unpack(data: bytes, max_bytes: int, **options: Any) -> Any:
    """msgpack's unpackb with every length capped at `max_bytes`: a hostile entry cannot make
    it allocate more than the entry's own size."""
    return msgpack.unpackb(
        data,
        raw=False,
        max_str_len=max_bytes,
        max_bin_len=max_bytes,
        max_array_len=max_bytes,
        max_map_len=max_bytes,
        **options,
    )


def _peek(data: bytes, max_bytes: int) -> dict:
    """Best-effort top-level map of a payload that failed `decode` ({} when unreadable)."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > max_bytes:
        return {}
    try:
        obj = _unpack(data, max_bytes)
    except Exception:  # noqa: BLE001 - garbage is expected here; any failure means "unknown"
        return {}
    return obj if isinstance(obj, dict) else {}


def peek_ids(data: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> tuple[str | None, str | None]:
    """Best-effort (job_id, image_id) of a payload that failed `decode`, for the dead letter."""
    obj = _peek(data, max_bytes)
    job_id, image_id = obj.get("job_id"), obj.get("image_id")
    return (
        job_id if isinstance(job_id, str) and job_id else None,
        image_id if isinstance(image_id, str) and image_id else None,
    )


def salvage(data: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Job | None:
    """A minimal valid job for a payload that failed `decode` but still names its job and image
    (a newer release's event, a damaged field), so that its image can get an error result and
    its bytes and in-flight slot be released. None when the ids cannot be read."""
    obj = _peek(data, max_bytes)
    job_id, image_id = peek_ids(data, max_bytes)
    if job_id is None or image_id is None:
        return None
    image = obj.get("image")
    if not isinstance(image, dict):
        image = {}
    path, sha = image.get("path"), image.get("sha256")
    submitted_at = obj.get("submitted_at")
    return new_job(
        job_id=job_id,
        image_id=image_id,
        path=path if isinstance(path, str) else "",
        sha256=sha if isinstance(sha, str) else "",
        size=0,
        submitted_at=submitted_at
        if isinstance(submitted_at, (int, float)) and not isinstance(submitted_at, bool)
        else 0.0,
    )


def _validate(job: Any) -> None:
    if not isinstance(job, dict):
        raise EventError(f"event is a {type(job).__name__}, expected a map")
    if job.get("schema") != SCHEMA:
        raise EventError(f"unknown schema {job.get('schema')!r}, expected {SCHEMA!r}")
    if job.get("version") not in SUPPORTED_VERSIONS:
        raise EventError(
            f"unsupported {SCHEMA} version {job.get('version')!r}; this release reads {sorted(SUPPORTED_VERSIONS)}"
        )
    _check_fields(job, _REQUIRED, "event")
    _check_fields(job["image"], _IMAGE_REQUIRED, "event.image")
    if "metadata" in job:
        check_metadata(job["metadata"])


def _check_fields(obj: dict, required: dict[str, tuple[type, ...]], where: str) -> None:
    for key, types in required.items():
        if key not in obj:
            raise EventError(f"{where} lacks {key!r}")
        if not isinstance(obj[key], types) or isinstance(obj[key], bool) and bool not in types:
            raise EventError(f"{where}.{key} is {type(obj[key]).__name__}")


def as_new_job(job: Job, *, job_id: str, submitted_at: float) -> Job:
    """A copy of `job` as a new submission (replay, dead-letter retry): its own job id (and so its
    own bytes key), submitted now, so that its result supersedes the original job's whenever
    either ends."""
    renewed = copy.deepcopy(job)
    renewed["job_id"], renewed["submitted_at"] = job_id, float(submitted_at)
    return renewed


def with_error(job: Job, stage: str, error_type: str, message: str) -> Job:
    """A copy of the job marked failed at `stage`; later stages pass it straight to the sink."""
    failed = copy.copy(job)
    failed["error"] = {"stage": stage, "type": error_type, "message": message}
    return failed
