"""Putting work into the pipeline: image bytes stored once (claim-check), the job on a stream.

Backpressure: the set of jobs whose bytes are still held (`names.INFLIGHT`) is the pipeline's
backlog, and its size is what bounds Redis memory; producers wait while it is above the
high-water mark. Admission is part of the publish itself (one Lua script checks the backlog
and publishes): many producers, or many HTTP uploads at once, never put more than the mark in
flight. A long-running producer also waits out Redis trouble that passes (`retry_transient`).
Every wait runs a `while_waiting` callback, so that a process that also supervises workers
keeps doing so: a worker that dies while the producer waits is the very thing that would
otherwise make the wait endless.

A publish is idempotent by job id, so a publish whose reply was lost (the connection dropped
after Redis ran it) is sent again: the script answers "already" for a job id it published
within PUBLISHED_MEMORY_S, or one still in flight, and adds nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
import structlog

from faces.errors import FacesError
from faces.schemas import events
from faces.schemas.job import Job
from faces.streams import clock, names, scripts
from faces.streams.groups import text
from faces.streams.reading import PAYLOAD_FIELD

# Producers call these through this module (producer/watch.py); they live in streams/transient.py.
from faces.streams.transient import is_transient, nothing, retry_transient

log = structlog.get_logger(__name__)

__all__ = ["NoRoom", "backlog", "has_room", "is_transient", "publish_image", "publish_when_room", "retry_transient"]

# How long a published job id is remembered (`names.published_key`): longer than a lost reply
# can take to show (the socket timeout) plus the time `publish_image` keeps sending it again.
PUBLISHED_MEMORY_S = 120
PUBLISH_RETRY_S = 30.0  # how long a publish whose reply was lost (or refused for now) is sent again

# KEYS: inflight set, blob key, stream, published marker, upload key, dead letters
# ARGV: job id, bytes, payload field, payload, high-water mark (0: none), marker TTL,
#       upload TTL (0: no upload record), dead letter to delete ('': none)
# Returns {1, entry id} published, {2, entry id or ''} this job id is already published,
# {0, backlog} refused: the backlog is at the high-water mark, nothing written.
_ADMIT_AND_PUBLISH = """
local known = redis.call('GET', KEYS[4])
if known then
  return {2, known}
end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return {2, ''}
end
local high = tonumber(ARGV[5])
if high > 0 then
  local backlog = redis.call('SCARD', KEYS[1])
  if backlog >= high then
    return {0, backlog}
  end
end
if ARGV[7] ~= '0' then
  redis.call('SET', KEYS[5], ARGV[1], 'EX', ARGV[7])
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[1], ARGV[1])
local entry = redis.call('XADD', KEYS[3], '*', ARGV[3], ARGV[4])
redis.call('SET', KEYS[4], entry, 'EX', ARGV[6])
if ARGV[8] ~= '' then
  redis.call('XDEL', KEYS[6], ARGV[8])
end
return {1, entry}
"""


class NoRoom(FacesError):
    """Nothing was published: the pipeline has `backlog` images in flight, at or above the
    high-water mark. Remedy: wait for room (`wait_for_room`) and publish again, or refuse the
    submission (the HTTP API's 429)."""

    internal = True  # waited out, or answered by the API (pipeline_full)

    def __init__(self, backlog: int, high_water: int):
        super().__init__(f"{backlog} images in flight, at the high-water mark of {high_water}")
        self.backlog = backlog
        self.high_water = high_water


def publish_image(
    client: redis.Redis,
    job: Job,
    data: bytes | bytearray,  # the HTTP API's upload arrives as a bytearray
    stream: str = names.IMAGES,
    *,
    upload_ttl_s: int | None = None,
    high_water: int = 0,
    settles: str | None = None,
) -> str:
    """Store the bytes under the job's blob key and add the job to `stream`, in one atomic
    step, when the backlog is below `high_water` (0: always); NoRoom, with nothing written,
    when it is not. With `upload_ttl_s` (the HTTP API), the job is also recorded as its image's
    latest upload in the same step: a job is never in the pipeline without the API knowing it.
    With `settles` (a dead letter's id), that dead letter is deleted in the same step.

    Returns the entry id. Safe to repeat with the same job: a lost reply (ConnectionError or
    TimeoutError after the command left), or a transient refusal (streams/transient.py: OOM,
    MASTERDOWN, TRYAGAIN, BUSY, ...), is sent again for up to PUBLISH_RETRY_S, and a job id
    already published adds nothing (the first entry's id is returned; '' once only the
    in-flight set still knows it). Past PUBLISH_RETRY_S the error is raised and whether the job
    was published is unknown: publishing it again with the same job id is safe.

    The blob key is derived from the job id, never read from the event."""
    job_id = job["job_id"]
    keys = [
        names.INFLIGHT,
        names.blob_key(job_id),
        stream,
        names.published_key(job_id),
        names.upload_key(job["image_id"]),
        names.DEAD_LETTERS,
    ]
    args: list = [
        job_id,
        data,
        PAYLOAD_FIELD,
        b"",  # the event, encoded once submitted_at is known (`send`)
        max(0, int(high_water)),
        PUBLISHED_MEMORY_S,
        max(1, int(upload_ttl_s)) if upload_ttl_s is not None else 0,
        settles or "",
    ]

    def send() -> list:
        # Submitted now on Redis's clock, whatever the producer's says: the newer submission's
        # result wins (schemas/result.py `supersedes`), so every producer must share one clock.
        job["submitted_at"] = clock.server_now(client)
        args[3] = events.encode(job)
        return scripts.call(client, _ADMIT_AND_PUBLISH, keys, args)

    reply = retry_transient(send, what="publish", give_up_after_s=PUBLISH_RETRY_S)
    if int(reply[0]) == 0:
        raise NoRoom(int(reply[1]), high_water)
    if int(reply[0]) == 2:
        log.info("publish.already", job_id=job_id)
    return text(reply[1])


def publish_when_room(
    client: redis.Redis,
    job: Job,
    data: bytes,
    high_water: int,
    *,
    stream: str = names.IMAGES,
    settles: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    while_waiting: Callable[[], None] = nothing,
) -> str:
    """`publish_image`, waiting for room (`wait_for_room`) for as long as it answers NoRoom:
    the producers' way (submit, dead-letter retry). `should_stop()` ends the wait and
    publishes without the check, as a stopping producer always did."""
    while True:
        wait_for_room(client, high_water, should_stop=should_stop, while_waiting=while_waiting)
        try:
            return publish_image(
                client, job, data, stream, high_water=0 if should_stop() else high_water, settles=settles
            )
        except NoRoom:
            continue  # another producer took the room between the wait and the publish


def backlog(client: redis.Redis) -> int:
    """Jobs submitted and not yet finished by the sink."""
    return int(client.scard(names.INFLIGHT))


def has_room(client: redis.Redis, high_water: int) -> bool:
    """True when the backlog is below `high_water` (0 disables the limit): the rule both
    `wait_for_room` and a caller that refuses instead of waiting (the HTTP API's 429) apply."""
    return high_water <= 0 or backlog(client) < high_water


def wait_for_room(
    client: redis.Redis,
    high_water: int,
    *,
    poll_s: float = 0.2,
    should_stop: Callable[[], bool] = lambda: False,
    while_waiting: Callable[[], None] = nothing,
) -> None:
    """Block while there is no room (`has_room`), running `while_waiting()` at every poll (e.g.
    a WorkerPool's supervise)."""
    while not has_room(client, high_water) and not should_stop():
        while_waiting()
        time.sleep(poll_s)
