"""Reading what was submitted (the images stream, kept for `--retention`) for replay, and the
admin operations on the whole key space: safe trim of every stream, purge."""

from __future__ import annotations

from collections.abc import Iterator

import redis

from faces.schemas import events
from faces.schemas.job import Job
from faces.streams import names, trimming
from faces.streams.reading import PAYLOAD_FIELD
from faces.streams.replies import entries

PAGE = 500


def submitted_jobs(client: redis.Redis, since: str = "-", until: str = "+") -> Iterator[tuple[str, Job]]:
    """(entry id, job) of every decodable submission between two stream ids, oldest first."""
    start = since
    while True:
        rows = entries(client.xrange(names.IMAGES, min=start, max=until, count=PAGE))
        for entry_id, fields in rows:
            try:
                yield entry_id, events.decode(fields.get(PAYLOAD_FIELD, b""))
            except events.EventError:
                continue  # garbage is the dead-letter stream's business, not replay's
        if len(rows) < PAGE:
            return
        start = "(" + rows[-1][0]


def held_bytes(client: redis.Redis, job_id: str) -> bytes | None:
    """The image bytes Redis still holds for a job (None once released)."""
    raw = client.get(names.blob_key(job_id))
    return raw if isinstance(raw, bytes) else None  # bytes from this client; None once released


def trim_all(client: redis.Redis, retention_s: float) -> dict[str, int]:
    """Safely trim every pipeline stream; the images stream keeps `retention_s` of history."""
    removed = {}
    for stream in names.PIPELINE_STREAMS:
        keep = retention_s if stream == names.IMAGES else None
        removed[stream] = trimming.trim_safely(client, stream, keep_since_s=keep)
    return removed


def purge(client: redis.Redis, *, people: bool = False) -> int:
    """Delete every key of the pipeline (streams, groups, bytes, results, dedupe memory); the
    people recognition knows, their faces and corrections only with `people` (users' own work,
    not pipeline state: a purge to clear a stuck pipeline must not lose it)."""
    deleted = 0
    batch: list[bytes] = []
    kept = names.RECOGNITION_PREFIX.encode() + b":"
    for key in client.scan_iter(match=names.ALL_KEYS, count=1000):
        if not people and key.startswith(kept):
            continue
        batch.append(key)
        if len(batch) >= 1000:
            deleted += client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += client.unlink(*batch)
    return int(deleted)
