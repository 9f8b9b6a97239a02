"""Safe trimming: a stream loses only entries every group has read and acknowledged.

The threshold is, over all groups of the stream, the oldest entry still pending, or the first
entry after the last one delivered when nothing is pending. XTRIM MINID removes only ids below
it, and new entries always get larger ids, so a race with producers cannot cut anything unread.
"""

from __future__ import annotations

import redis

from faces.streams import clock
from faces.streams.groups import id_key, text


def safe_threshold(client: redis.Redis, stream: str) -> str | None:
    """The smallest id some group still needs; None when the stream has no group yet."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return None  # no such stream
    if not groups:
        return None
    needed = []
    for group in groups:
        oldest = oldest_pending(client, stream, text(group["name"])) if int(group["pending"]) else None
        if oldest is not None:
            needed.append(id_key(oldest))
        else:
            # Nothing pending (or it drained since XINFO): everything up to the last delivered
            # id is acknowledged. That id was read first, so it can only be older than now.
            ms, seq = id_key(text(group["last-delivered-id"]))
            needed.append((ms, seq + 1))
    ms, seq = min(needed)
    return f"{ms}-{seq}"


def oldest_pending(client: redis.Redis, stream: str, group: str) -> str | None:
    """The smallest id pending in `group`; None when nothing is (the summary's min is nil then,
    which happens when the group drains between two commands)."""
    summary = client.xpending(stream, group)
    return text(summary["min"]) if summary and summary.get("min") is not None else None


def trim_safely(client: redis.Redis, stream: str, keep_since_s: float | None = None) -> int:
    """Remove acknowledged entries of `stream`; with `keep_since_s`, keep that much history
    even if acknowledged (the images stream keeps it for replay). Returns entries removed."""
    threshold = safe_threshold(client, stream)
    if threshold is None:
        return 0
    if keep_since_s is not None:
        # Stream ids are stamped on Redis's clock: the cutoff is taken on it too.
        cutoff_ms = max(0, int((clock.server_now(client) - keep_since_s) * 1000))
        threshold = min(threshold, f"{cutoff_ms}-0", key=id_key)
    return int(client.xtrim(stream, minid=threshold, approximate=False))
