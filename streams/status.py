"""Status queries: per stream its length, per group pending / lag / consumers; dead letters."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import redis

from faces.streams import clock, deadletters, heartbeat, names
from faces.streams.groups import text
from faces.streams.replies import entries
from faces.streams.trimming import oldest_pending

LAG_COUNT_LIMIT = 100_000  # on Redis 6.2 lag is counted with XRANGE; cap that work


def pipeline_status(client: redis.Redis) -> dict[str, Any]:
    """`{"streams": [{"name", "length", "groups": [{"name", "pending", "lag", "consumers",
    "workers", ...}]}], "dead_letters": N, "inflight": N, "workers": [heartbeats],
    "throughput_per_min": {stage: N}, "results_per_min": N, ...}`, the shape
    `faces status --json` prints. A group's `workers` counts the live heartbeats of its stage:
    `consumers` (XINFO) leaves out, on Redis 6.2, a worker that was never given an entry."""
    workers = heartbeat.workers(client)
    live = Counter(worker["stage"] for worker in workers if worker["live"])
    streams = []
    for stream in names.PIPELINE_STREAMS + (names.RESULTS,):
        groups = []
        for group in _groups(client, stream):
            name = text(group["name"])
            groups.append(
                {
                    "name": name,
                    "pending": int(group["pending"]),
                    "oldest_pending_age_s": _oldest_pending_age_s(client, stream, name, int(group["pending"])),
                    "lag": _lag(client, stream, group),
                    "consumers": int(group["consumers"]),
                    "workers": live[name],
                    "last_delivered_id": text(group["last-delivered-id"]),
                    "consumer_details": _consumers(client, stream, name),
                }
            )
        streams.append({"name": stream, "length": int(client.xlen(stream)), "groups": groups})
    memory = client.info("memory")
    return {
        "streams": streams,
        "dead_letters": deadletters.count(client),
        "inflight": int(client.scard(names.INFLIGHT)),
        "stages": list(names.STAGE_ORDER),
        "workers": workers,
        "throughput_per_min": throughput_per_minute(client),
        "results_per_min": results_per_minute(client),
        "redis_memory_bytes": int(memory.get("used_memory", 0)),
        "redis_maxmemory_policy": text(memory.get("maxmemory_policy", b"")) or None,
    }


def throughput_per_minute(client: redis.Redis) -> dict[str, int]:
    """Entries each stage handled over the last 60 s (from its 10-second counters)."""
    now_bucket = int(time.time()) // names.STATS_BUCKET_S
    buckets = range(now_bucket - 60 // names.STATS_BUCKET_S + 1, now_bucket + 1)
    out = {}
    for stage in names.STAGE_ORDER:
        values = client.mget([names.stats_key(stage, b) for b in buckets])
        out[stage] = sum(int(v) for v in values if v is not None)
    return out


def results_per_minute(client: redis.Redis) -> int:
    """Results announced over the last 60 s, counted on the results stream (its entry ids are
    Redis times; the sink's counter also counts the entries it dead-letters)."""
    since_ms = int(clock.server_now(client) * 1000) - 60_000
    return len(entries(client.xrange(names.RESULTS, min=f"{since_ms}-0", max="+", count=LAG_COUNT_LIMIT)))


def _groups(client: redis.Redis, stream: str) -> list[dict]:
    try:
        return client.xinfo_groups(stream)
    except redis.ResponseError:
        return []  # stream does not exist yet


def _consumers(client: redis.Redis, stream: str, group: str) -> list[dict[str, Any]]:
    try:
        rows = client.xinfo_consumers(stream, group)
    except redis.ResponseError:
        return []  # the group went away between two commands
    return [{"name": text(c["name"]), "pending": int(c["pending"]), "idle_ms": int(c["idle"])} for c in rows]


def _oldest_pending_age_s(client: redis.Redis, stream: str, group: str, pending: int) -> float | None:
    """Seconds since the oldest entry still pending in `group` was added to the stream."""
    oldest = oldest_pending(client, stream, group) if pending else None
    if oldest is None:
        return None
    return round(max(0.0, clock.server_now(client) - int(oldest.split("-")[0]) / 1000), 1)


def _lag(client: redis.Redis, stream: str, group: dict) -> int:
    """Entries not yet delivered to the group. Redis 7 reports it (XINFO lag); 6.2 does not,
    so there it is counted from the group's last-delivered id."""
    lag = group.get("lag")
    if lag is not None:
        return int(lag)
    after = "(" + text(group["last-delivered-id"])
    return len(entries(client.xrange(stream, min=after, max="+", count=LAG_COUNT_LIMIT)))
