"""Heartbeats: each worker (and each drop-folder watcher) records, from its consume loop, that it
is alive and consuming. A process that hangs (a stuck model call, a deadlock) stops renewing its
key, so `faces health` and the HTTP API's /readyz see it, where "Redis answers" would not.

One hash per worker, `faces:heartbeat:STAGE:CONSUMER`, expiring after twice the stale age:
fields `at` (Redis server time, seconds), `host`, `pid`, and the worker's counts since it started
(`processed`, `errors`, `dead_letters`; a watcher counts `processed` only). Server time, so that
the age is right whatever the clocks of the workers' machines say.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import redis

from faces import settings as defaults
from faces.streams import names
from faces.streams.groups import text


KEY_HEAD = names.heartbeat_key("", "")[:-1]  # "faces:heartbeat:", then STAGE:CONSUMER


COUNTS = ("processed", "errors", "dead_letters")  # what a heartbeat reports, each an int


def beat(client: redis.Redis, stage: str, consumer: str, counts: dict[str, int],
         stale_s: float = defaults.HEARTBEAT_STALE_S) -> None:
    """Record that `consumer` of `stage` is consuming now, with its `counts` (names in COUNTS)."""
    seconds, micros = client.time()
    key = names.heartbeat_key(stage, consumer)
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping={"at": f"{seconds + micros / 1e6:.3f}", "host": socket.gethostname(),
                            "pid": os.getpid(), **{name: int(counts.get(name, 0)) for name in COUNTS}})
    pipe.expire(key, int(stale_s * 2))
    pipe.execute()


def forget(client: redis.Redis, stage: str, consumer: str) -> None:
    """Remove the heartbeat of a worker that stops cleanly."""
    client.delete(names.heartbeat_key(stage, consumer))


def workers(client: redis.Redis) -> list[dict[str, Any]]:
    """Every worker with a heartbeat key: stage, consumer, host, pid, its COUNTS and the age of
    its last heartbeat in seconds, sorted by stage and consumer."""
    keys = sorted(text(k) for k in client.scan_iter(match=names.HEARTBEATS, count=500))
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    seconds, micros = client.time()
    now = seconds + micros / 1e6
    rows = []
    for key, fields in zip(keys, pipe.execute()):
        if not fields:
            continue  # expired between the scan and the read
        fields = {text(k): text(v) for k, v in fields.items()}
        stage, _, consumer = key.removeprefix(KEY_HEAD).partition(":")
        rows.append({"stage": stage, "consumer": consumer, "host": fields.get("host", ""),
                     "pid": int(fields.get("pid", 0)),
                     **{name: int(fields.get(name, 0)) for name in COUNTS},
                     "age_s": round(max(0.0, now - float(fields.get("at", 0))), 1)})
    return rows


def live_workers(client: redis.Redis, stale_s: float = defaults.HEARTBEAT_STALE_S) -> list[dict[str, Any]]:
    """The workers whose last heartbeat is younger than `stale_s`."""
    return [w for w in workers(client) if w["age_s"] < stale_s]
