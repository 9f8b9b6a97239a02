"""Content dedupe for the drop-folder watcher, kept in Redis so it survives restarts.

`publish_unseen` checks the image's sha256 against `faces:seen` and publishes it in the same
atomic step (a Lua script): two watchers, or a crash between check and publish, can neither
publish the same bytes twice nor mark bytes seen that were never published.
"""

from __future__ import annotations

import redis

from schemas import events
from streams import names
from streams.groups import text
from streams.reading import PAYLOAD_FIELD

# KEYS: seen hash, blob key, inflight set, images stream
# ARGV: sha256, path, image bytes, job id, payload, force ("1"/"0")
_PUBLISH_UNSEEN = """
if ARGV[6] ~= '1' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return false
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
return redis.call('XADD', KEYS[4], '*', ARGV[7], ARGV[5])
"""


def publish_unseen(client: redis.Redis, job: dict, data: bytes, *, force: bool = False) -> str | None:
    """Publish `job` unless its bytes were seen before (or `force`); the entry id, or None."""
    script = client.register_script(_PUBLISH_UNSEEN)
    entry = script(
        keys=[names.SEEN, job["image"]["blob"], names.INFLIGHT, names.IMAGES],
        args=[job["image"]["sha256"], job["image"]["path"], data, job["job_id"],
              events.encode(job), "1" if force else "0", PAYLOAD_FIELD],
    )
    return text(entry) if entry else None


def seen_path(client: redis.Redis, sha256: str) -> str | None:
    """The path under which these bytes were first published, if they were."""
    raw = client.hget(names.SEEN, sha256)
    return text(raw) if raw is not None else None


def remembered_files(client: redis.Redis, folder_key: str) -> dict[str, str]:
    """The watcher's memory of one folder: path -> "size:mtime_ns" of files already handled."""
    return {text(k): text(v) for k, v in client.hgetall(folder_key).items()}


def remember_file(client: redis.Redis, folder_key: str, path: str, signature: str) -> None:
    client.hset(folder_key, path, signature)


def watch_key(folder_id: str) -> str:
    return f"{names.PREFIX}:watch:{folder_id}"
