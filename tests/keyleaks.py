"""The keys a test left in its redis-server that the pipeline does not keep on purpose.

Checked by the `redis_server` fixture (tests/fixtures_redis.py) after every test, on the test's
own server. Two kinds of leak: a key of no family streams/names.py defines (a stray key), and
what the sink's commit releases but a finished job still holds: the in-flight slot of a job
announced on the results stream or dead-lettered by the sink, the image bytes (and kept pixels) of the former,
and bytes (and the pixels detect kept) that never expire of the latter (the sink keeps a dead letter's bytes for a while,
for `faces dlq retry`). The bytes and slot of a job still on its way are work in progress. A test that leaves other keys on
purpose says so: `@pytest.mark.redis_keys_left("pattern", ...)` (fnmatch patterns).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

import redis

from faces.streams import names

# Every key family of streams/names.py: what the pipeline may leave behind once its work is done.
DURABLE_FAMILIES = (
    names.IMAGES,
    names.DETECTED,
    names.LANDMARKED,
    names.ANALYZED,
    names.RECOGNIZED,
    names.RESULTS,
    names.DEAD_LETTERS,
    names.GROUPS_CREATED,
    names.HEARTBEATS,
    names.INFLIGHT,
    names.BENCH_PING,
    names.BENCH_PONG,
    names.blob_key("*"),
    names.pixels_key("*"),
    names.published_key("*"),
    names.held_key(f"{names.PREFIX}:*"),
    names.seen_key("*"),
    names.watch_key("*"),
    names.stats_key("*", "*"),  # a pattern in place of the bucket number
    names.result_key("*"),
    names.upload_key("*"),
    names.job_key("*"),
    f"{names.RECOGNITION_PREFIX}:*",  # the people, their faces and corrections: users' data, kept
)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def finished_jobs(client: redis.Redis) -> tuple[set[str], set[str]]:
    """The ids of the jobs whose last stage is done: (announced results, the sink's dead letters)."""
    announced = {_text(fields.get(b"job_id", b"")) for _, fields in client.xrange(names.RESULTS)}
    given_up = {
        _text(fields.get(b"job_id", b""))
        for _, fields in client.xrange(names.DEAD_LETTERS)
        if fields.get(b"stage") == b"sink"
    }
    return announced - {""}, given_up - {""}


def leaked_keys(client: redis.Redis, allowed: Iterable[str] = ()) -> list[str]:
    """What the server holds that no family and no `allowed` pattern accounts for, and what
    finished jobs still hold (see above); one line each."""
    patterns = (*DURABLE_FAMILIES, *allowed)
    keys = sorted(_text(k) for k in client.scan_iter(count=1000))
    leaks = [f"stray key {k}" for k in keys if not any(fnmatchcase(k, p) for p in patterns)]
    announced, given_up = finished_jobs(client)
    finished = announced | given_up
    leaks += [
        f"image bytes of finished job {j} ({names.blob_key(j)})" for j in sorted(announced) if names.blob_key(j) in keys
    ]
    leaks += [
        f"kept pixels of finished job {j} ({names.pixels_key(j)})"
        for j in sorted(announced)
        if names.pixels_key(j) in keys
    ]
    leaks += [
        f"kept pixels that never expire of job {j} the sink dead-lettered ({names.pixels_key(j)})"
        for j in sorted(given_up - announced)
        if names.pixels_key(j) in keys and client.ttl(names.pixels_key(j)) == -1
    ]
    leaks += [
        f"image bytes that never expire of job {j} the sink dead-lettered ({names.blob_key(j)})"
        for j in sorted(given_up - announced)
        if names.blob_key(j) in keys and client.ttl(names.blob_key(j)) == -1
    ]
    slots = {_text(m) for m in client.smembers(names.INFLIGHT)}
    leaks += [f"in-flight slot of finished job {j} ({names.INFLIGHT})" for j in sorted(finished & slots)]
    return leaks
