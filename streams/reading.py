"""How a consumer gets entries: new ones, its own failed ones again, and dead consumers' ones.

Every path that hands entries to the stage returns `RawEntry`s with their true delivery count,
because the dead-letter rule (after N deliveries) must hold whichever way an entry arrives; and
only those paths count a delivery: taking over a dead consumer's entries (autoclaim) counts none,
each is counted when claim_own takes it to be tried, so the limit counts attempts actually made.
Taking back or renewing our own entries goes through Lua scripts that first check, in the
pending list, that this consumer still holds the entry: XCLAIM alone would take it from whoever
holds it now.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack
import redis
from redis.typing import EncodableT

from faces.schemas.job import Job
from faces.streams import names, scripts
from faces.streams.groups import text
from faces.streams.replies import pending_id, read_streams

PAYLOAD_FIELD = b"d"


@dataclass(frozen=True)
class RawEntry:
    entry_id: str
    payload: bytes | None  # None: the entry was deleted from the stream while pending
    attempt: int


def read_new(client: redis.Redis, stream: str, group: str, consumer: str, count: int, block_ms: int) -> list[RawEntry]:
    """Entries never delivered to the group (XREADGROUP >): first delivery, attempt 1."""
    reply = client.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms)
    return [RawEntry(i, fields.get(PAYLOAD_FIELD), 1) for _stream, items in read_streams(reply) for i, fields in items]


def own_pending_ids(
    client: redis.Redis, stream: str, group: str, consumer: str, limit: int = 10_000, start: str = "-", end: str = "+"
) -> list[str]:
    """Ids this consumer holds but has not acknowledged (left over from a crash or a failure)."""
    rows = client.xpending_range(stream, group, min=start, max=end, count=limit, consumername=consumer)
    return [pending_id(r) for r in rows]


# Both scripts: KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3..] ids. `held(id)` is
# the id's pending-list row when the consumer holds it, else nil.
_HELD = """
local function held(id)
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1]
  if row and row[2] == ARGV[2] then return row end
end
"""

# Returns {id, delivery count, fields or nothing} per id still held by the consumer; an id
# without fields was deleted from the stream while pending (6.2 keeps it pending, 7.x drops it).
_CLAIM_OWN = (
    _HELD
    + """
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local row = held(id)
  if row then
    local entry = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)[1]
    local after = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1]
    local count = after and after[4] or row[4] + 1
    if entry and entry[2] then
      out[#out + 1] = {id, count, entry[2]}
    else
      out[#out + 1] = {id, count}
    end
  end
end
return out
"""
)

# Resets the idle time of the ids still held (JUSTID: not a new delivery); returns the others.
_RENEW_OWN = (
    _HELD
    + """
local lost = {}
for i = 3, #ARGV do
  if held(ARGV[i]) then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""
)


# KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] min idle ms, ARGV[4] cursor, ARGV[5]
# count. XAUTOCLAIM JUSTID takes entries over without counting a delivery, in a script because
# redis-py drops the cursor of a JUSTID reply. Its error comes back as its own reply (NOGROUP,
# OOM...), naming the command: 6.2 does not, for a command refused by ACL inside a script.
_TAKE_IDLE = """
local reply = redis.pcall('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5], 'JUSTID')
if type(reply) == 'table' and reply.err then
  return redis.error_reply(reply.err .. ' (xautoclaim)')
end
return reply
"""


# KEYS[1] stream; ARGV[1] group, ARGV[2] consumer. Deletes the consumer only if it holds
# nothing, in one step: another process reading under the same name between a separate check
# and the delete would otherwise lose what it read with the consumer. 1 if deleted.
_LEAVE_IF_EMPTY = """
if redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])[1] then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


def leave_if_empty(client: redis.Redis, stream: str, group: str, consumer: str) -> bool:
    """Remove `consumer` from its group unless it holds entries; True when removed."""
    return bool(scripts.call(client, _LEAVE_IF_EMPTY, [stream], [group, consumer]))


def claim_own(client: redis.Redis, stream: str, group: str, consumer: str, ids: list[str]) -> list[RawEntry]:
    """Take our own `ids` again for a retry (a new delivery); ids someone else took are left out."""
    if not ids:
        return []
    rows = scripts.call(client, _CLAIM_OWN, [stream], [group, consumer, *ids])
    entries = []
    for row in rows:
        fields = _pairs(row[2]) if len(row) > 2 else None
        payload = fields.get(PAYLOAD_FIELD) if fields is not None else None
        entries.append(RawEntry(text(row[0]), payload, int(row[1])))
    return entries


def renew_own(client: redis.Redis, stream: str, group: str, consumer: str, ids: list[str]) -> list[str]:
    """Reset the idle time of the entries we still hold; returns the ids we no longer hold."""
    if not ids:
        return []
    return [text(i) for i in scripts.call(client, _RENEW_OWN, [stream], [group, consumer, *ids])]


def autoclaim(
    client: redis.Redis, stream: str, group: str, consumer: str, min_idle_ms: int, cursor: str, count: int
) -> tuple[str, list[str], list[RawEntry]]:
    """Take over entries idle longer than `min_idle_ms` from any consumer, without counting a
    delivery (JUSTID); returns the next cursor, the ids taken and the entries found deleted.

    The ids taken are handed through claim_own one at a time, which counts the delivery when
    the entry is about to be tried: an entry waiting its turn behind one that hangs or kills
    its worker is not charged that attempt. Entries deleted from the stream while pending:
    Redis 7 drops them from the pending list and reports their ids apart (returned here with
    payload=None); 6.2 leaves them pending, now ours, among the ids taken, and claim_own finds
    them deleted.
    """
    reply = scripts.call(client, _TAKE_IDLE, [stream], [group, consumer, min_idle_ms, cursor, count])
    deleted = [RawEntry(text(i), None, 1) for i in (reply[2] if len(reply) > 2 else [])]
    return text(reply[0]), [text(i) for i in reply[1]], deleted


def _pairs(flat: list) -> dict[bytes, bytes]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}


# -- what is known of entries held: jobs of entries deleted from the stream while pending ----------
def held_record(job: Job) -> bytes:
    """What is kept of a held entry's job: its ids, the image's path and hash, when it was
    submitted. Enough for events.salvage to rebuild a job the sink can give an error result."""
    image = job.get("image") or {}
    return msgpack.packb(
        {
            "job_id": job["job_id"],
            "image_id": job["image_id"],
            "image": {"path": image.get("path", ""), "sha256": image.get("sha256", "")},
            "submitted_at": job.get("submitted_at", 0.0),
        },
        use_bin_type=True,
    )


def hold(client: redis.Redis, stream: str, records: dict[str, bytes]) -> None:
    """Record the jobs of entries of `stream` being worked on (entry id -> held_record); the
    commit that acknowledges an entry removes its record (streams/commit.py)."""
    if records:
        mapping: dict[EncodableT, EncodableT] = {i: r for i, r in records.items()}  # redis-py's key type
        client.hset(names.held_key(stream), mapping=mapping)


def held(client: redis.Redis, stream: str, ids: list[str]) -> dict[str, bytes]:
    """The held records of `ids` that were recorded (entry id -> record)."""
    if not ids:
        return {}
    # bytes from this client; None for an id never recorded
    return {i: r for i, r in zip(ids, client.hmget(names.held_key(stream), ids)) if isinstance(r, bytes)}
