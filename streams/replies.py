"""Typed views of redis-py's stream replies, narrowed once here.

redis-py annotates replies for every kind of client: str as well as bytes (a client made with
decode_responses=True), None for an entry id (Redis 6.2's nil in XAUTOCLAIM). The pipeline's
client is always made with decode_responses=False (streams/connection.py), so keys, fields and
values are bytes; these helpers say so to the type checker in one place instead of at each call.
"""

from __future__ import annotations

from typing import Any, cast

from redis.typing import StreamRangeResponse, XPendingRangeEntry

from faces.streams.groups import text

Fields = dict[bytes, bytes]
Entry = tuple[str, Fields]


def entries(rows: StreamRangeResponse | None) -> list[Entry]:
    """XRANGE / XREVRANGE rows as (entry id, fields); none for a missing stream. An entry
    without fields (deleted while pending) gets empty fields; a nil id is left out."""
    return [(text(i), fields(f)) for i, f in rows or [] if i is not None]


def fields(raw: object) -> Fields:
    """An entry's fields (None: the entry is gone) as the bytes mapping the client returns."""
    return cast(Fields, raw) if raw is not None else {}


def read_streams(reply: object) -> list[tuple[str, list[Entry]]]:
    """An XREAD / XREADGROUP reply (RESP2: a list of [stream, rows]; None on timeout) as
    (stream, entries) pairs."""
    pairs = cast("list[tuple[bytes, StreamRangeResponse]] | None", reply)
    return [(text(stream), entries(rows)) for stream, rows in pairs or []]


def pending_id(row: XPendingRangeEntry) -> str:
    """The entry id of one XPENDING row."""
    return string(row["message_id"])


def string(value: Any) -> str:
    """A reply value that is text (bytes from this client); TypeError for anything else, which
    would mean a reply of another shape than the command's."""
    if isinstance(value, (bytes, str)):
        return text(value)
    raise TypeError(f"expected text in a Redis reply, got {type(value).__name__}")
