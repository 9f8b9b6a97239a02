"""Putting work into the pipeline: image bytes stored once (claim-check), the job on a stream.

Backpressure: the set of jobs whose bytes are still held (`faces:inflight`) is the pipeline's
backlog, and its size is what bounds Redis memory; producers wait while it is above the
high-water mark.
"""

from __future__ import annotations

import time
from typing import Callable

import redis

from schemas import events
from streams import names
from streams.groups import text
from streams.reading import PAYLOAD_FIELD


def publish_image(client: redis.Redis, job: dict, data: bytes, stream: str = names.IMAGES) -> str:
    """Store the bytes under the job's blob key and add the job to `stream`, atomically."""
    payload = events.encode(job)
    pipe = client.pipeline(transaction=True)
    pipe.set(job["image"]["blob"], data)
    pipe.sadd(names.INFLIGHT, job["job_id"])
    pipe.xadd(stream, {PAYLOAD_FIELD: payload})
    return text(pipe.execute()[-1])


def backlog(client: redis.Redis) -> int:
    """Jobs submitted and not yet finished by the sink."""
    return int(client.scard(names.INFLIGHT))


def wait_for_room(client: redis.Redis, high_water: int, *, poll_s: float = 0.2,
                  should_stop: Callable[[], bool] = lambda: False) -> None:
    """Block while the backlog is above `high_water` (0 disables the limit)."""
    if high_water <= 0:
        return
    while backlog(client) >= high_water and not should_stop():
        time.sleep(poll_s)
