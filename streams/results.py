"""Reading what the sink produced: the results stream, dead letters as they come, stored results."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from faces.streams import names
from faces.streams.groups import text
from faces.streams.replies import entries, read_streams


@dataclass(frozen=True)
class Announcement:
    """One entry of the results or dead-letter stream, as far as a waiting producer cares."""

    stream_id: str
    job_id: str
    image_id: str
    status: str  # "ok" | "error" | "dead" | "superseded" (not kept: outcomes.SUPERSEDED)


def last_id(client: redis.Redis, stream: str) -> str:
    """The id of the newest entry of `stream` ("0-0" when empty): read after it for new ones."""
    rows = entries(client.xrevrange(stream, count=1))
    return rows[0][0] if rows else "0-0"


def cursors_now(client: redis.Redis) -> dict[str, str]:
    """Where to start following results and dead letters: after what exists now."""
    return {s: last_id(client, s) for s in (names.RESULTS, names.DEAD_LETTERS)}


def follow(client: redis.Redis, cursors: dict[str, str], block_ms: int) -> list[Announcement]:
    """New announcements on the results and dead-letter streams after `cursors` (updated).

    Only final words count: a result, or a dead letter of the sink itself (dead letters of
    earlier stages are followed by an error result, so they are skipped here)."""
    reply = client.xread({s: cursors[s] for s in (names.RESULTS, names.DEAD_LETTERS)}, block=block_ms)
    out = []
    for stream, items in read_streams(reply):
        for entry_id, fields in items:
            cursors[stream] = entry_id
            if stream == names.DEAD_LETTERS and text(fields.get(b"stage", b"")) != "sink":
                continue  # dead before the sink: the sink still writes an error result for it
            status = text(fields.get(b"status", b"dead")) if stream == names.RESULTS else "dead"
            out.append(
                Announcement(entry_id, text(fields.get(b"job_id", b"")), text(fields.get(b"image_id", b"")), status)
            )
    return out


def stored_result(client: redis.Redis, image_id: str) -> str | None:
    """The latest JSON result of an image, as kept in Redis."""
    raw = client.get(names.result_key(image_id))
    return text(raw) if raw is not None else None
