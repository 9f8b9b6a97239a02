"""How a consumer gets entries: new ones, its own failed ones again, and dead consumers' ones.

Every path returns `RawEntry`s with their true delivery count, because the dead-letter rule
(after N deliveries) must hold whichever way an entry arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from streams.groups import id_key, text

PAYLOAD_FIELD = b"d"


@dataclass(frozen=True)
class RawEntry:
    entry_id: str
    payload: bytes | None   # None: the entry was deleted from the stream while pending
    attempt: int


def read_new(client: redis.Redis, stream: str, group: str, consumer: str,
             count: int, block_ms: int) -> list[RawEntry]:
    """Entries never delivered to the group (XREADGROUP >): first delivery, attempt 1."""
    reply = client.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms)
    entries = []
    for _stream, items in reply or []:
        for entry_id, fields in items:
            entries.append(RawEntry(text(entry_id), (fields or {}).get(PAYLOAD_FIELD), 1))
    return entries


def own_pending_ids(client: redis.Redis, stream: str, group: str, consumer: str,
                    limit: int = 10_000) -> list[str]:
    """Ids this consumer holds but has not acknowledged (left over from a crash or a failure)."""
    rows = client.xpending_range(stream, group, min="-", max="+", count=limit, consumername=consumer)
    return [text(r["message_id"]) for r in rows]


def claim(client: redis.Redis, stream: str, group: str, consumer: str,
          ids: list[str]) -> list[RawEntry]:
    """Take `ids` (our own, for a retry) again; XCLAIM counts this as a new delivery."""
    if not ids:
        return []
    items = client.xclaim(stream, group, consumer, min_idle_time=0, message_ids=ids)
    claimed = [(text(i), f) for i, f in items if i is not None]
    gone = set(ids) - {i for i, _ in claimed}
    return _with_attempts(client, stream, group, consumer, claimed, gone)


def autoclaim(client: redis.Redis, stream: str, group: str, consumer: str,
              min_idle_ms: int, cursor: str, count: int) -> tuple[str, list[RawEntry]]:
    """Take entries idle longer than `min_idle_ms` from any consumer; returns the next cursor.

    Redis 7 drops entries deleted from the stream from the pending list itself and reports
    them apart; 6.2 hands them back with no fields. Both become RawEntry(payload=None).
    """
    reply = client.xautoclaim(stream, group, consumer, min_idle_ms, start_id=cursor, count=count)
    next_cursor = text(reply[0])
    claimed = []
    gone: set[str] = set()
    for entry_id, fields in reply[1]:
        if entry_id is None:
            continue
        if fields is None:
            gone.add(text(entry_id))
        else:
            claimed.append((text(entry_id), fields))
    if len(reply) > 2:
        gone.update(text(i) for i in reply[2])
    return next_cursor, _with_attempts(client, stream, group, consumer, claimed, gone)


def renew(client: redis.Redis, stream: str, group: str, consumer: str, ids: list[str]) -> None:
    """Reset the idle time of entries we are still working on (JUSTID: no new delivery)."""
    if ids:
        client.xclaim(stream, group, consumer, min_idle_time=0, message_ids=ids, justid=True)


def _with_attempts(client: redis.Redis, stream: str, group: str, consumer: str,
                   claimed: list[tuple[str, dict]], gone: set[str]) -> list[RawEntry]:
    counts = _delivery_counts(client, stream, group, consumer, [i for i, _ in claimed])
    entries = [RawEntry(i, (f or {}).get(PAYLOAD_FIELD), counts.get(i, 1)) for i, f in claimed]
    entries.extend(RawEntry(i, None, 1) for i in sorted(gone))
    return entries


def _delivery_counts(client: redis.Redis, stream: str, group: str, consumer: str,
                     ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    ordered = sorted(ids, key=id_key)
    rows = client.xpending_range(stream, group, min=ordered[0], max=ordered[-1],
                                 count=len(ids) * 4 + 100, consumername=consumer)
    wanted = set(ids)
    counts = {text(r["message_id"]): int(r["times_delivered"]) for r in rows
              if text(r["message_id"]) in wanted}
    for missing in wanted - counts.keys():  # the range held more of our entries than fetched
        row = client.xpending_range(stream, group, min=missing, max=missing, count=1)
        if row:
            counts[missing] = int(row[0]["times_delivered"])
    return counts
