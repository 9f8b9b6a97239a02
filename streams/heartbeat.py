"""Heartbeats: each worker (and each drop-folder watcher) records, from its consume loop, that it
is alive and consuming. A process that hangs (a stuck model call, a deadlock) stops renewing its
heartbeat, so `faces health` and the HTTP API's /readyz see it, where "Redis answers" would not.

One hash for all of them, `faces:heartbeats`: field `STAGE:CONSUMER`, value a small JSON object,
`at` (Redis server time, seconds), `host`, `pid`, and the worker's counts since it started
(`processed`, `errors`, `dead_letters`; a watcher counts `processed` only). Server time, so that
the age is right whatever the clocks of the workers' machines say. One hash, not a key per
worker, so that reading them is one HGETALL however many keys Redis holds (a SCAN for a key
pattern walks the whole keyspace: days of results). Fields are removed by a clean stop, and by
readers once twice the stale age old (a worker killed without a stop).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from faces import settings as defaults
from faces.streams import clock, names
from faces.streams.groups import text

COUNTS = ("processed", "errors", "dead_letters")  # what a heartbeat reports, each an int


def _now(client: redis.Redis) -> float:
    return clock.server_now(client)


def beat(client: redis.Redis, stage: str, consumer: str, counts: dict[str, int]) -> None:
    """Record that `consumer` of `stage` is consuming now, with its `counts` (names in COUNTS)."""
    value = {
        "at": round(_now(client), 3),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **{name: int(counts.get(name, 0)) for name in COUNTS},
    }
    client.hset(names.HEARTBEATS, f"{stage}:{consumer}", json.dumps(value))


def forget(client: redis.Redis, stage: str, consumer: str) -> None:
    """Remove the heartbeat of a worker that stops cleanly."""
    client.hdel(names.HEARTBEATS, f"{stage}:{consumer}")


@dataclass
class Heartbeat:
    """One worker's heartbeat as its loop keeps it: beaten when due (every `every_s`), the
    counts read only then, and forgotten on a clean stop."""

    client: redis.Redis
    stage: str
    consumer: str
    every_s: float = defaults.HEARTBEAT_EVERY_S
    _due: float = 0.0  # monotonic time of the next beat

    def beat_if_due(self, counts: Callable[[], dict[str, int]]) -> None:
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + self.every_s  # also after a failed beat: tried again next period
        beat(self.client, self.stage, self.consumer, counts())

    def forget(self) -> None:
        forget(self.client, self.stage, self.consumer)


def workers(client: redis.Redis, stale_s: float = defaults.HEARTBEAT_STALE_S) -> list[dict[str, Any]]:
    """Every worker with a heartbeat: stage, consumer, host, pid, its COUNTS, the age of its
    last heartbeat in seconds and `live` (younger than `stale_s`), sorted by stage and consumer. Heartbeats older than twice
    `stale_s` are removed (their worker was killed) and not returned."""
    rows, gone = [], []
    now = _now(client)
    for field, raw in sorted(client.hgetall(names.HEARTBEATS).items()):
        field = text(field)
        stage, _, consumer = field.partition(":")
        try:
            value = json.loads(raw)
            age_s = round(max(0.0, now - float(value["at"])), 1)
        except (ValueError, KeyError, TypeError):
            gone.append(field)  # not ours: written by hand or by another release
            continue
        if age_s > 2 * stale_s:
            gone.append(field)
            continue
        rows.append(
            {
                "stage": stage,
                "consumer": consumer,
                "host": str(value.get("host", "")),
                "pid": int(value.get("pid", 0)),
                **{name: int(value.get(name, 0)) for name in COUNTS},
                "age_s": age_s,
                "live": age_s < stale_s,
            }
        )
    if gone:
        client.hdel(names.HEARTBEATS, *gone)
    return rows


def live_workers(client: redis.Redis, stale_s: float = defaults.HEARTBEAT_STALE_S) -> list[dict[str, Any]]:
    """The workers whose last heartbeat is younger than `stale_s`."""
    return [w for w in workers(client, stale_s) if w["live"]]
