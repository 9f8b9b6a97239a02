"""Status queries: per stream its length, per group pending / lag / consumers; dead letters."""

from __future__ import annotations

from typing import Any

import redis

from streams import deadletters, names
from streams.groups import text

LAG_COUNT_LIMIT = 100_000  # on Redis 6.2 lag is counted with XRANGE; cap that work


def pipeline_status(client: redis.Redis) -> dict[str, Any]:
    """`{"streams": [{"name", "length", "groups": [{"name", "pending", "lag", "consumers", ...}]}],
    "dead_letters": N, "inflight": N}`, the shape `faces status --json` prints."""
    streams = []
    for stream in names.PIPELINE_STREAMS + (names.RESULTS,):
        groups = []
        for group in _groups(client, stream):
            name = text(group["name"])
            groups.append({
                "name": name,
                "pending": int(group["pending"]),
                "lag": _lag(client, stream, group),
                "consumers": int(group["consumers"]),
                "last_delivered_id": text(group["last-delivered-id"]),
                "consumer_details": _consumers(client, stream, name),
            })
        streams.append({"name": stream, "length": int(client.xlen(stream)), "groups": groups})
    return {
        "streams": streams,
        "dead_letters": deadletters.count(client),
        "inflight": int(client.scard(names.INFLIGHT)),
    }


def _groups(client: redis.Redis, stream: str) -> list[dict]:
    try:
        return client.xinfo_groups(stream)
    except redis.ResponseError:
        return []  # stream does not exist yet


def _consumers(client: redis.Redis, stream: str, group: str) -> list[dict[str, Any]]:
    return [{"name": text(c["name"]), "pending": int(c["pending"]), "idle_ms": int(c["idle"])}
            for c in client.xinfo_consumers(stream, group)]


def _lag(client: redis.Redis, stream: str, group: dict) -> int:
    """Entries not yet delivered to the group. Redis 7 reports it (XINFO lag); 6.2 does not,
    so there it is counted from the group's last-delivered id."""
    lag = group.get("lag")
    if lag is not None:
        return int(lag)
    after = "(" + text(group["last-delivered-id"])
    return len(client.xrange(stream, min=after, max="+", count=LAG_COUNT_LIMIT))
