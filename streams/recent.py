"""The latest results, newest first, a page at a time: the results stream read backwards, each
announcement with its image's stored result."""

from __future__ import annotations

import re
from dataclasses import dataclass

import redis

from faces.streams import names
from faces.streams.groups import text

_ENTRY_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
MAX_MS = 2**63  # a stream id's parts are unsigned 64-bit; keep to what every client reads as int


class BadCursor(ValueError):
    """A cursor that is not a results-stream entry id.

    Cause: it was made up or cut short. Remedy: pass back the `next_cursor` of a previous page
    unchanged, or leave it out to start from the newest result."""


@dataclass(frozen=True)
class Finished:
    """One announcement of the results stream and the image's stored result (None: expired)."""

    cursor: str         # the entry id: pass it as `before` for the page after this item
    image_id: str
    job_id: str
    status: str
    finished_ms: int    # when the sink announced it (the entry id's time)
    result: str | None  # the stored JSON result of the image (possibly a newer job's)


def recent_results(client: redis.Redis, *, limit: int, before: str | None = None,
                   since_ms: int | None = None) -> tuple[list[Finished], str | None]:
    """Up to `limit` announcements older than the entry `before` (None: from the newest) and no
    older than `since_ms`, newest first; and the cursor of the next page (None: no more)."""
    found = _ENTRY_ID.fullmatch(before) if before is not None else None
    if before is not None and (found is None or before == "0-0"
                               or any(int(part) >= MAX_MS for part in found.groups())):
        raise BadCursor(f"cursor {before!r} is not an entry id like 1764279000123-0")
    rows = client.xrevrange(names.RESULTS, max=f"({before}" if before else "+",
                            min=f"{since_ms}-0" if since_ms else "-", count=limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    image_ids = [text(fields.get(b"image_id", b"")) for _id, fields in rows]
    stored = client.mget([names.result_key(i) for i in image_ids]) if rows else []
    page = [Finished(text(entry_id), image_id, text(fields.get(b"job_id", b"")),
                     text(fields.get(b"status", b"")), int(text(entry_id).split("-")[0]),
                     text(raw) if raw is not None else None)
            for (entry_id, fields), image_id, raw in zip(rows, image_ids, stored)]
    return page, (page[-1].cursor if more else None)
