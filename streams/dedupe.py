"""Content dedupe and folder memory for the drop-folder watcher, kept in Redis so they survive
restarts.

`publish_unseen` checks the image's sha256 and publishes it in the same atomic step (a Lua
script): two watchers, or a crash between check and publish, can neither publish the same bytes
twice nor mark bytes seen that were never published. Each sha256 is one key
(`names.seen_key`) that expires after the dedupe window, so this memory is bounded by what was
published within the window instead of growing forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import redis

from faces import settings as defaults
from faces.schemas import events
from faces.schemas.job import Job
from faces.streams import clock, names, scripts
from faces.streams.groups import text
from faces.streams.reading import PAYLOAD_FIELD

# KEYS: seen key of the sha256, blob key, inflight set, images stream
# ARGV: path, image bytes, job id, payload, payload field, mode, window in seconds
# mode: "check" (skip bytes seen within the window), "force" (publish anyway and restart the
# window), "bypass" (no dedupe at all: neither checked nor remembered).
# Returns {1, entry id} published, {0, first path} a duplicate, {2} this very job is already in.
_PUBLISH_UNSEEN = """
if redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 1 then
  return {2}
end
if ARGV[6] == 'check' then
  local first = redis.call('GET', KEYS[1])
  if first then
    return {0, first}
  end
end
if ARGV[6] ~= 'bypass' then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[7])
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return {1, redis.call('XADD', KEYS[4], '*', ARGV[5], ARGV[4])}
"""


@dataclass(frozen=True)
class Publication:
    """What `publish_unseen` did with a job."""

    status: Literal["published", "duplicate", "already"]
    entry_id: str | None = None  # "published": the images stream entry
    first_path: str | None = None  # "duplicate": the path these bytes were first published as


def publish_unseen(
    client: redis.Redis,
    job: Job,
    data: bytes,
    *,
    force: bool = False,
    dedupe: bool = True,
    window_s: int = defaults.DEDUPE_WINDOW_S,
) -> Publication:
    """Publish `job` unless its bytes were published within `window_s` (or `force`).

    `dedupe=False` publishes without checking or remembering the bytes. Sending the same job
    again (a retry after a lost reply) is answered "already" while the job is in flight, and
    publishes nothing: the job id is checked first, so a retry never publishes twice.
    """
    if window_s < 1:
        raise ValueError(f"the dedupe window must be at least 1 s, got {window_s}")
    mode = "bypass" if not dedupe else "force" if force else "check"
    # Submitted now on Redis's clock, as publishing.publish_image does for every other producer:
    # a watcher whose host clock runs ahead must not outrank later replays (issue 22 item 11).
    job["submitted_at"] = clock.server_now(client)
    # The blob key is derived from the job id, never read from the event: an event cannot
    # make this script write a key of its choosing.
    reply = scripts.call(
        client,
        _PUBLISH_UNSEEN,
        keys=[names.seen_key(job["image"]["sha256"]), names.blob_key(job["job_id"]), names.INFLIGHT, names.IMAGES],
        args=[job["image"]["path"], data, job["job_id"], events.encode(job), PAYLOAD_FIELD, mode, int(window_s)],
    )
    code = int(reply[0])
    if code == 1:
        return Publication("published", entry_id=text(reply[1]))
    if code == 0:
        return Publication("duplicate", first_path=text(reply[1]))
    return Publication("already")


def remembered_files(client: redis.Redis, folder_key: str) -> dict[str, str]:
    """The watcher's memory of one folder: path -> "size:mtime_ns" of files already handled."""
    return {text(k): text(v) for k, v in client.hgetall(folder_key).items()}


def remember_file(client: redis.Redis, folder_key: str, path: str, signature: str) -> None:
    client.hset(folder_key, path, signature)


def forget_files(client: redis.Redis, folder_key: str, paths: list[str]) -> None:
    """Drop files that left the folder from its memory (which stays one entry per file there)."""
    if paths:
        client.hdel(folder_key, *paths)
