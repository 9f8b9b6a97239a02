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
from typing import Callable, TypeVar

import redis
import structlog

from faces import settings as defaults
from faces.schemas import events
from faces.streams import clock, names, scripts
from faces.streams.groups import text
from faces.streams.reading import PAYLOAD_FIELD

log = structlog.get_logger(__name__)

T = TypeVar("T")

CALLBACK_EVERY_S = 0.2  # how often `while_waiting` runs during a long wait

# Server replies that say "not now" rather than "never": out of memory (noeviction), a failed
# background save refusing writes, a replica (e.g. during a failover), an AOF being loaded.
_TRANSIENT_CODES = ("OOM", "MISCONF", "READONLY", "LOADING")


# How long a published job id is remembered (`names.published_key`): longer than a lost reply
# can take to show (the socket timeout) plus the time `publish_image` keeps sending it again.
PUBLISHED_MEMORY_S = 120
PUBLISH_RETRY_S = 30.0  # how long a publish whose reply was lost is sent again

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


class NoRoom(Exception):
    """Nothing was published: the pipeline has `backlog` images in flight, at or above the
    high-water mark. Remedy: wait for room (`wait_for_room`) and publish again, or refuse the
    submission (the HTTP API's 429)."""

    def __init__(self, backlog: int, high_water: int):
        super().__init__(f"{backlog} images in flight, at the high-water mark of {high_water}")
        self.backlog = backlog
        self.high_water = high_water


def _nothing() -> None:
    return None


def publish_image(
    client: redis.Redis,
    job: dict,
    data: bytes,
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
    TimeoutError after the command left) is sent again for up to PUBLISH_RETRY_S, and a job id
    already published adds nothing (the first entry's id is returned; '' once only the
    in-flight set still knows it). Past PUBLISH_RETRY_S the error is raised and whether the job
    was published is unknown: publishing it again with the same job id is safe.

    The blob key is derived from the job id, never read from the event."""
    job_id = job["job_id"]
    # Submitted now on Redis's clock, whatever the producer's says: the newer submission's
    # result wins (schemas/result.py `supersedes`), so every producer must share one clock.
    job["submitted_at"] = clock.server_now(client)
    keys = [
        names.INFLIGHT,
        names.blob_key(job_id),
        stream,
        names.published_key(job_id),
        names.upload_key(job["image_id"]),
        names.DEAD_LETTERS,
    ]
    args = [
        job_id,
        data,
        PAYLOAD_FIELD,
        events.encode(job),
        max(0, int(high_water)),
        PUBLISHED_MEMORY_S,
        max(1, int(upload_ttl_s)) if upload_ttl_s is not None else 0,
        settles or "",
    ]
    reply = _resent_while_lost(lambda: scripts.call(client, _ADMIT_AND_PUBLISH, keys, args))
    if int(reply[0]) == 0:
        raise NoRoom(int(reply[1]), high_water)
    if int(reply[0]) == 2:
        log.info("publish.already", job_id=job_id)
    return text(reply[1])


def _resent_while_lost(send: Callable[[], T]) -> T:
    """`send()`, sent again while its connection is lost, for up to PUBLISH_RETRY_S."""
    deadline = time.monotonic() + PUBLISH_RETRY_S
    delay = defaults.RECONNECT_MIN_S
    while True:
        try:
            return send()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("publish.resent", error=str(exc) or type(exc).__name__, retry_in_s=delay)
        time.sleep(delay)
        delay = min(delay * 2, defaults.RECONNECT_MAX_S)


def publish_when_room(
    client: redis.Redis,
    job: dict,
    data: bytes,
    high_water: int,
    *,
    stream: str = names.IMAGES,
    settles: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    while_waiting: Callable[[], None] = _nothing,
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
    while_waiting: Callable[[], None] = _nothing,
) -> None:
    """Block while there is no room (`has_room`), running `while_waiting()` at every poll (e.g.
    a WorkerPool's supervise)."""
    while not has_room(client, high_water) and not should_stop():
        while_waiting()
        time.sleep(poll_s)


def is_transient(exc: BaseException) -> bool:
    """True for a Redis error that passes by itself: lost connection, timeout, or a server that
    answers OOM / MISCONF / READONLY / LOADING."""
    if isinstance(
        exc,
        (
            redis.ConnectionError,
            redis.TimeoutError,  # includes BusyLoadingError
            redis.exceptions.OutOfMemoryError,
            redis.exceptions.ReadOnlyError,
        ),
    ):
        return True
    if not isinstance(exc, redis.ResponseError):
        return False
    message = str(exc)
    if message.split(" ", 1)[0] in _TRANSIENT_CODES:
        return True
    # Redis 6 wraps an error met inside a script: "Error running script ...: @user_script:1: -OOM ...".
    return any(f": -{code} " in message for code in _TRANSIENT_CODES)


def retry_transient(
    action: Callable[[], T],
    *,
    what: str,
    while_waiting: Callable[[], None] = _nothing,
    min_s: float = defaults.RECONNECT_MIN_S,
    max_s: float = defaults.RECONNECT_MAX_S,
) -> T:
    """`action()`, retried with exponential backoff (min_s doubling to max_s) for as long as it
    fails with a transient Redis error (`is_transient`); any other error is raised. Logs one
    warning per failed attempt; `while_waiting()` runs every CALLBACK_EVERY_S while it waits.

    `action` must be safe to repeat: a reply lost on the wire leaves it unknown whether the
    attempt took effect."""
    delay = min_s
    while True:
        try:
            return action()
        except redis.RedisError as exc:
            if not is_transient(exc):
                raise
            log.warning("redis.unavailable", during=what, error=str(exc) or type(exc).__name__, retry_in_s=delay)
        _sleep_running(delay, while_waiting)
        delay = min(delay * 2, max_s)


def _sleep_running(seconds: float, while_waiting: Callable[[], None]) -> None:
    deadline = time.monotonic() + seconds
    while True:
        while_waiting()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(CALLBACK_EVERY_S, left))
