"""Consumer-group plumbing: create groups idempotently and recognise the errors that matter."""

from __future__ import annotations

import redis


def is_busygroup(exc: redis.ResponseError) -> bool:
    return str(exc).startswith("BUSYGROUP")


def is_nogroup(exc: redis.ResponseError) -> bool:
    return str(exc).startswith("NOGROUP")


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create `group` on `stream` (and the stream) unless it exists; other errors propagate.

    Starting at id 0 means a group created after entries were added still sees them all.
    """
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if not is_busygroup(exc):
            raise


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream id as a sortable (milliseconds, sequence) pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
