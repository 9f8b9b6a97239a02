"""Consumer-group plumbing: create groups once, notice when one was lost, recognise its errors
(which Redis errors pass by themselves: streams/transient.py)."""

from __future__ import annotations

import time

import redis

from faces.streams import names
from faces.streams.errors import GroupLost


def is_busygroup(exc: redis.ResponseError) -> bool:
    return str(exc).startswith("BUSYGROUP")


def is_nogroup(exc: redis.ResponseError) -> bool:
    return str(exc).startswith("NOGROUP")


def _marker(stream: str, group: str) -> str:
    return f"{stream}|{group}"


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create `group` on `stream` if this pipeline never did; GroupLost if it did and the group
    is gone. Only BUSYGROUP (it exists) is ignored; other errors propagate.

    A new group starts at id 0, so entries published before the first worker came up (a
    `faces submit` ahead of `faces up`) are processed. Each creation is recorded in one hash,
    so a group that disappears later is told apart from a group never made.
    """
    if client.hexists(names.GROUPS_CREATED, _marker(stream, group)) and client.xlen(stream):
        if not _group_exists(client, stream, group):
            raise GroupLost(
                f"consumer group {group!r} of {stream} is gone although this pipeline created it: "
                f"workers stop rather than reprocess the stream's history; run "
                f"`faces recreate-group {group}` (new entries only), then "
                f"`faces replay --since TIME` for what you need again"
            )
        return
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if not is_busygroup(exc):
            raise
    client.hsetnx(names.GROUPS_CREATED, _marker(stream, group), repr(time.time()))


def recreate_group(client: redis.Redis, stream: str, group: str) -> bool:
    """Create `group` at the end of `stream` (only entries added from now on); False if it exists.
    The lost group's records of held entries (names.held_key) go with it: no consumer holds them
    any more, and nothing else would ever remove them."""
    try:
        client.xgroup_create(stream, group, id="$", mkstream=True)
    except redis.ResponseError as exc:
        if not is_busygroup(exc):
            raise
        return False
    client.hset(names.GROUPS_CREATED, _marker(stream, group), repr(time.time()))
    client.delete(names.held_key(stream))
    return True


def forget_group(client: redis.Redis, stream: str, group: str) -> None:
    """Drop the record that `group` was created (after deleting its stream on purpose)."""
    client.hdel(names.GROUPS_CREATED, _marker(stream, group))


def _group_exists(client: redis.Redis, stream: str, group: str) -> bool:
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return False  # the stream itself is gone
    return any(text(g["name"]) == group for g in groups)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream id as a sortable (milliseconds, sequence) pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
