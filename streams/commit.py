"""Turn a batch's outcomes into one MULTI/EXEC: outputs, dead letters, results and the XACKs.

Writing the output and acknowledging the input in one transaction is what makes delivery
at-least-once without duplicates from our side: either both happen or neither does, so a
crash at any point leaves the entry pending for a retry, never half-forwarded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from schemas import events
from streams import deadletters, names
from streams.names import StageRoute
from streams.outcomes import Finish
from streams.reading import PAYLOAD_FIELD


@dataclass(frozen=True)
class DeadLetterNote:
    """A delivery going to the dead-letter stream, with what is known of its job."""

    entry_id: str
    attempt: int
    error_type: str
    message: str
    payload: bytes | None
    job: dict | None


def commit(client: redis.Redis, route: StageRoute, *, acks: list[str],
           forwards: list[bytes], finishes: list[Finish], dead: list[DeadLetterNote],
           max_event_bytes: int, blob_ttl_s: int) -> None:
    """Apply every effect of one batch and acknowledge `acks`, atomically.

    `forwards` are encoded jobs for the stage's output stream (encoded beforehand, so an
    oversized job becomes a dead letter instead of failing the whole batch)."""
    pipe = client.pipeline(transaction=True)
    for payload in forwards:
        pipe.xadd(route.output_stream, {PAYLOAD_FIELD: payload})
    for fin in finishes:
        _finish(pipe, fin)
    for note in dead:
        _dead_letter(pipe, route, note, max_event_bytes, blob_ttl_s)
    if acks:
        pipe.xack(route.input_stream, route.group, *acks)
        bucket = names.stats_key(route.name, int(time.time()) // names.STATS_BUCKET_S)
        pipe.incrby(bucket, len(acks))
        pipe.expire(bucket, names.STATS_TTL_S)
    pipe.execute()


def _finish(pipe: redis.client.Pipeline, fin: Finish) -> None:
    job = fin.job
    pipe.set(names.result_key(job["image_id"]), fin.result_json.encode())
    pipe.xadd(names.RESULTS, {b"image_id": job["image_id"].encode(), b"job_id": job["job_id"].encode(),
                              b"status": fin.status.encode()},
              maxlen=names.RESULTS_MAXLEN, approximate=True)
    pipe.delete(job["image"]["blob"])
    pipe.srem(names.INFLIGHT, job["job_id"])


def _dead_letter(pipe: redis.client.Pipeline, route: StageRoute, note: DeadLetterNote,
                 max_event_bytes: int, blob_ttl_s: int) -> None:
    job = note.job
    job_id = job["job_id"] if job else None
    image_id = job["image_id"] if job else None
    if job is None and note.payload is not None:
        job_id, image_id = events.peek_ids(note.payload)
    pipe.xadd(names.DEAD_LETTERS, deadletters.fields(
        stage=route.name, stream=route.input_stream, entry_id=note.entry_id,
        error_type=note.error_type, message=note.message, deliveries=note.attempt,
        job_id=job_id, image_id=image_id, payload=note.payload))
    if job is None:
        return
    if route.output_stream is not None:
        # The image still gets a result: the sink writes an error result for it.
        failed = events.with_error(job, route.name, note.error_type, note.message)
        failed["faces"] = []  # keep the error event small whatever made the job fail
        pipe.xadd(names.ANALYZED, {PAYLOAD_FIELD: events.encode(failed, max_event_bytes)})
    else:
        # The sink itself gave up: no result, but the bytes must not be held forever.
        pipe.srem(names.INFLIGHT, job["job_id"])
        pipe.expire(job["image"]["blob"], blob_ttl_s)
