"""Empty and too-large files: each is hashed from its own bytes and ends with its own result.

A too-large file is hashed by streaming it and its bytes are not stored; an empty or too-large
file can only end in an error result, so it is published whatever the content dedupe says."""

from __future__ import annotations

import hashlib
from pathlib import Path

from faces.producer.submit import submit_file
from faces.producer.watch import Watcher
from faces.streams import names
from tests.published import published
from tests.waiting import wait_until

LIMIT = 64  # bytes: a small max_image_bytes makes "too large" cheap to produce


def poll_until(watcher: Watcher, condition, what: str) -> None:
    wait_until(lambda: watcher.poll_once() >= 0 and condition(), timeout_s=5, what=what)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_submitted_too_large_file_is_hashed_from_its_bytes_and_not_stored(tmp_path, redis_client):
    big = tmp_path / "big.jpg"
    big.write_bytes(b"x" * (LIMIT * 5 + 3))
    sent = submit_file(redis_client, big, max_image_bytes=LIMIT)
    [job] = published(redis_client)
    assert job["job_id"] == sent.job_id
    assert job["image"]["sha256"] == sha(big.read_bytes())
    assert job["image_id"] == f"big-{sha(big.read_bytes())[:8]}"
    assert job["image"]["bytes"] == LIMIT * 5 + 3
    assert job["error"]["type"] == "FileTooLarge"
    assert redis_client.get(names.blob_key(job["job_id"])) == b""  # the bytes were not stored


def test_watcher_publishes_every_too_large_file_under_its_own_hash(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    contents = {"a.jpg": b"a" * (LIMIT + 1), "b.jpg": b"b" * (LIMIT * 3), "c.jpg": b"b" * (LIMIT * 3)}
    for name, data in contents.items():
        (drop / name).write_bytes(data)
    watcher = Watcher(redis_client, drop, settle_s=0.0, max_image_bytes=LIMIT)
    poll_until(watcher, lambda: len(published(redis_client)) == 3, "three too-large files published")
    for _ in range(3):
        watcher.poll_once()
    jobs = published(redis_client)
    # c.jpg has b.jpg's bytes, but an error job is not deduped: each file gets its result.
    assert [Path(j["image"]["path"]).name for j in jobs] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [j["image"]["sha256"] for j in jobs] == [sha(d) for d in contents.values()]
    assert [j["error"]["type"] for j in jobs] == ["FileTooLarge"] * 3
    assert [redis_client.get(names.blob_key(j["job_id"])) for j in jobs] == [b""] * 3
    assert (watcher.published, watcher.duplicates) == (3, 0)


def test_watcher_publishes_every_empty_file(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    for name in ("first.jpg", "second.jpg"):
        (drop / name).write_bytes(b"")
    watcher = Watcher(redis_client, drop, settle_s=0.0)
    poll_until(watcher, lambda: len(published(redis_client)) == 2, "both empty files published")
    for _ in range(3):
        watcher.poll_once()
    jobs = published(redis_client)
    assert [Path(j["image"]["path"]).name for j in jobs] == ["first.jpg", "second.jpg"]
    assert [j["image_id"] for j in jobs] == [f"first-{sha(b'')[:8]}", f"second-{sha(b'')[:8]}"]
    assert (watcher.published, watcher.duplicates) == (2, 0)
    # Nothing about empty bytes is remembered as "seen": a real image is never judged by them.
    assert redis_client.exists(names.seen_key(sha(b""))) == 0
