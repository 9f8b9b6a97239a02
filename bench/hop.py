"""One hop of a job event between two stages, timed: what the transport alone costs.

A hop is what the runtime does to a job between two stages' models calls: the receiving
stage reads the entry (XREADGROUP), unpacks it (msgpack + validation), and hands it on the
way every stage does, packing it again and committing XADD-to-the-next-stream together with
XACK-of-this-one in the runtime's owner-checked Lua commit (streams/commit.py). Here two
bench-only groups pass the same events back and forth between two bench-only streams, so each
hop is exactly that sequence against the real server, with nothing else in it.

Both sides run in this process, one after the other: the figure is the Redis and msgpack
work of a hop, without the scheduler's wake-up of a reader blocked in another process.

It drives the runtime's own functions (``faces.streams`` reading, commit, groups) and makes a
few Redis calls of its own (seeding, the image fetch, clean-up): outside ``faces.streams``,
where the product keeps its Redis calls, because the bench is not part of the product.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from faces.schemas import events
from faces.schemas.job import Job
from faces.streams import commit as committing
from faces.streams import names, reading
from faces.streams.commit import EntryEffects
from faces.streams.groups import ensure_group, forget_group
from faces.streams.reading import RawEntry

# Streams and groups of their own, so the bench never touches a pipeline stream.
_PING = names.BENCH_PING
_PONG = names.BENCH_PONG
_ROUTES = (names.StageRoute("bench-ping", _PING, _PONG), names.StageRoute("bench-pong", _PONG, _PING))
_CONSUMER = "bench"
_BLOCK_MS = 1000  # the events are always there already; this only bounds a lost one


@dataclass(frozen=True)
class HopRun:
    """Timings of ``hops`` hops of ``batch`` events each (one XREADGROUP, one MULTI/EXEC)."""

    event_bytes: int
    batch: int
    seconds: list[float]  # wall time of each hop, for the whole batch
    with_image_fetch: bool  # each hop also fetched the image bytes (MGET), as image stages do


def time_hops(client: redis.Redis, job: Job, hops: int, batch: int = 1, image: bytes | None = None) -> HopRun:
    """Pass ``batch`` copies of ``job`` between two bench streams ``hops`` times, timing each hop.

    With ``image``, the bytes are stored under the job's blob key first and every hop also
    MGETs them, as the detect, landmarks and age/gender stages do before calling their model.
    Everything the run creates is deleted afterwards.
    """
    payload = events.encode(job)
    for route in _ROUTES:
        ensure_group(client, route.input_stream, route.group)
    blob = names.blob_key(job["job_id"])
    if image is not None:
        client.set(blob, image)
    try:
        for _ in range(batch):
            client.xadd(_ROUTES[0].input_stream, {reading.PAYLOAD_FIELD: payload})
        seconds = []
        for hop in range(hops):
            route = _ROUTES[hop % 2]
            started = time.perf_counter()
            entries = reading.read_new(
                client, route.input_stream, route.group, _CONSUMER, count=batch, block_ms=_BLOCK_MS
            )
            if image is not None:
                client.mget([blob] * len(entries))
            effects = [_forwarded(route, entry) for entry in entries]
            committing.commit(client, route, _CONSUMER, effects)
            seconds.append(time.perf_counter() - started)
            if len(entries) != batch:
                raise RuntimeError(f"hop {hop} moved {len(entries)} events, expected {batch}")
    finally:
        client.delete(_PING, _PONG, blob)
        for route in _ROUTES:
            forget_group(client, route.input_stream, route.group)
    return HopRun(event_bytes=len(payload), batch=batch, seconds=seconds, with_image_fetch=image is not None)


def _forwarded(route: names.StageRoute, entry: RawEntry) -> EntryEffects:
    """An entry passed on as a stage would: its event decoded and encoded again, then forwarded."""
    assert entry.payload is not None, "the benchmark deletes no entry while it runs"
    return EntryEffects(entry.entry_id, [committing.forward(route, events.encode(events.decode(entry.payload)))])
