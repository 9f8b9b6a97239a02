"""Putting work into the pipeline: image bytes stored once (claim-check), the job on a stream.

Backpressure: the set of jobs whose bytes are still held (`names.INFLIGHT`) is the pipeline's
backlog, and its size is what bounds Redis memory; producers wait while it is above the
high-water mark. A long-running producer also waits out Redis trouble that passes
(`retry_transient`). Every wait runs a `while_waiting` callback, so that a process that also
supervises workers keeps doing so: a worker that dies while the producer waits is the very
thing that would otherwise make the wait endless.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

import redis
import structlog

from faces import settings as defaults
from faces.schemas import events
from faces.streams import clock, names
from faces.streams.groups import text
from faces.streams.reading import PAYLOAD_FIELD

log = structlog.get_logger(__name__)

T = TypeVar("T")

CALLBACK_EVERY_S = 0.2  # how often `while_waiting` runs during a long wait

# Server replies that say "not now" rather than "never": out of memory (noeviction), a failed
# background save refusing writes, a replica (e.g. during a failover), an AOF being loaded.
_TRANSIENT_CODES = ("OOM", "MISCONF", "READONLY", "LOADING")


def _nothing() -> None:
    return None


def publish_image(client: redis.Redis, job: dict, data: bytes, stream: str = names.IMAGES, *,
                  upload_ttl_s: int | None = None) -> str:
    """Store the bytes under the job's blob key and add the job to `stream`, atomically. With
    `upload_ttl_s` (the HTTP API), the job is also recorded as its image's latest upload, in the
    same transaction: a job is never in the pipeline without the API knowing it.

    The blob key is derived from the job id, never read from the event."""
    # Submitted now on Redis's clock, whatever the producer's says: the newer submission's
    # result wins (schemas/result.py `supersedes`), so every producer must share one clock.
    job["submitted_at"] = clock.server_now(client)
    payload = events.encode(job)
    pipe = client.pipeline(transaction=True)
    if upload_ttl_s is not None:
        pipe.set(names.upload_key(job["image_id"]), job["job_id"], ex=max(1, int(upload_ttl_s)))
    pipe.set(names.blob_key(job["job_id"]), data)
    pipe.sadd(names.INFLIGHT, job["job_id"])
    pipe.xadd(stream, {PAYLOAD_FIELD: payload})
    return text(pipe.execute()[-1])


def backlog(client: redis.Redis) -> int:
    """Jobs submitted and not yet finished by the sink."""
    return int(client.scard(names.INFLIGHT))


def has_room(client: redis.Redis, high_water: int) -> bool:
    """True when the backlog is below `high_water` (0 disables the limit): the rule both
    `wait_for_room` and a caller that refuses instead of waiting (the HTTP API's 429) apply."""
    return high_water <= 0 or backlog(client) < high_water


def wait_for_room(client: redis.Redis, high_water: int, *, poll_s: float = 0.2,
                  should_stop: Callable[[], bool] = lambda: False,
                  while_waiting: Callable[[], None] = _nothing) -> None:
    """Block while there is no room (`has_room`), running `while_waiting()` at every poll (e.g.
    a WorkerPool's supervise)."""
    while not has_room(client, high_water) and not should_stop():
        while_waiting()
        time.sleep(poll_s)


def is_transient(exc: BaseException) -> bool:
    """True for a Redis error that passes by itself: lost connection, timeout, or a server that
    answers OOM / MISCONF / READONLY / LOADING."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError,  # includes BusyLoadingError
                        redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)):
        return True
    if not isinstance(exc, redis.ResponseError):
        return False
    message = str(exc)
    if message.split(" ", 1)[0] in _TRANSIENT_CODES:
        return True
    # Redis 6 wraps an error met inside a script: "Error running script ...: @user_script:1: -OOM ...".
    return any(f": -{code} " in message for code in _TRANSIENT_CODES)


def retry_transient(action: Callable[[], T], *, what: str,
                    while_waiting: Callable[[], None] = _nothing,
                    min_s: float = defaults.RECONNECT_MIN_S, max_s: float = defaults.RECONNECT_MAX_S) -> T:
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
            log.warning("redis.unavailable", during=what, error=str(exc) or type(exc).__name__,
                        retry_in_s=delay)
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
