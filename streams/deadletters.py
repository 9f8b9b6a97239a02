"""The dead-letter stream: entries no stage could process, kept with the reason.

Each dead letter records where it failed (stage, stream, entry id), why (error type and
message), how often it was tried, and the original payload, so it can be inspected, retried
into its stage's input stream, or dropped.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import redis

from faces.streams import names
from faces.streams.groups import text
from faces.streams.reading import PAYLOAD_FIELD
from faces.streams.replies import Fields, entries

# Payloads above this are not kept (the letter says how large it was): with the stream's
# length cap this bounds the dead letters' memory (README "Memory"). Such an image is
# retried with `faces replay --image`, which reads the file again.
MAX_KEPT_PAYLOAD_BYTES = 64 << 10

_ENTRY_ID = re.compile(r"\d+-\d+")


@dataclass(frozen=True)
class DeadLetter:
    id: str
    stage: str
    stream: str
    entry_id: str
    error_type: str
    message: str
    deliveries: int
    job_id: str | None
    image_id: str | None
    at: float
    payload: bytes | None
    payload_bytes: int = 0  # size of the original payload, also when it was too large to keep


def fields(
    *,
    stage: str,
    stream: str,
    entry_id: str,
    error_type: str,
    message: str,
    deliveries: int,
    job_id: str | None,
    image_id: str | None,
    payload: bytes | None,
) -> dict[bytes, bytes]:
    """The stream fields of one dead letter (what XADD gets)."""
    out = {
        b"stage": stage.encode(),
        b"stream": stream.encode(),
        b"entry_id": entry_id.encode(),
        b"error_type": error_type.encode(),
        b"message": message.encode(errors="replace"),
        b"deliveries": str(deliveries).encode(),
        b"at": repr(time.time()).encode(),
        b"job_id": (job_id or "").encode(),
        b"image_id": (image_id or "").encode(),
    }
    if payload is not None:
        out[b"payload_bytes"] = str(len(payload)).encode()
        if len(payload) <= MAX_KEPT_PAYLOAD_BYTES:
            out[PAYLOAD_FIELD] = payload
    return out


def _parse(entry_id: str, f: Fields) -> DeadLetter:
    def s(key: bytes) -> str:
        return text(f.get(key, b""))

    return DeadLetter(
        id=entry_id,
        stage=s(b"stage"),
        stream=s(b"stream"),
        entry_id=s(b"entry_id"),
        error_type=s(b"error_type"),
        message=s(b"message"),
        deliveries=int(s(b"deliveries") or 0),
        job_id=s(b"job_id") or None,
        image_id=s(b"image_id") or None,
        at=float(s(b"at") or 0),
        payload=f.get(PAYLOAD_FIELD),
        payload_bytes=int(s(b"payload_bytes") or 0),
    )


parse = _parse  # one dead letter from its entry id and fields (streams/recent.py lists them)


def count(client: redis.Redis) -> int:
    return int(client.xlen(names.DEAD_LETTERS))


def list_all(client: redis.Redis, limit: int = 1000) -> list[DeadLetter]:
    return [_parse(i, f) for i, f in entries(client.xrange(names.DEAD_LETTERS, count=limit))]


def get(client: redis.Redis, dead_id: str) -> DeadLetter | None:
    """The dead letter with entry id `dead_id`; None for any other text (Redis would refuse a
    malformed id, and would take "5" for the first letter of millisecond 5)."""
    if not _ENTRY_ID.fullmatch(dead_id):
        return None
    rows = entries(client.xrange(names.DEAD_LETTERS, min=dead_id, max=dead_id, count=1))
    return _parse(*rows[0]) if rows else None


def drop(client: redis.Redis, dead_ids: list[str]) -> int:
    return int(client.xdel(names.DEAD_LETTERS, *dead_ids)) if dead_ids else 0


def requeue(client: redis.Redis, letter: DeadLetter, job_id: str, payload: bytes, data: bytes) -> str:
    """Put a retry of the dead letter (a new job `job_id`, encoded as `payload`, with its image
    bytes `data`) on the stream the letter failed on and delete the letter, in one transaction.
    A new job, not the old one again: the old job's error result may still be on its way to the
    sink, which would release the bytes of the old job id under the retry. Returns the new
    entry id."""
    pipe = client.pipeline(transaction=True)
    pipe.set(names.blob_key(job_id), data)
    pipe.sadd(names.INFLIGHT, job_id)
    pipe.xadd(letter.stream, {PAYLOAD_FIELD: payload})
    pipe.xdel(names.DEAD_LETTERS, letter.id)
    return text(pipe.execute()[2])
