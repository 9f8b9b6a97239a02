"""Bounded memory of the producer's keys: one dedupe key per sha256 that expires after the
dedupe window, a folder memory that forgets files no longer in the folder, and image bytes
stored under the key derived from the job id, whatever the event says."""

from __future__ import annotations

import hashlib

from faces import settings as defaults
from faces.producer.files import job_for
from faces.producer.watch import Watcher
from faces.streams import dedupe, names, publishing
from tests.published import OTHER, PHOTO, published_names
from tests.waiting import wait_until


def poll_until(watcher: Watcher, condition, what: str) -> None:
    wait_until(lambda: watcher.poll_once() >= 0 and condition(), timeout_s=10, what=what)


def test_seen_bytes_are_one_key_per_sha256_that_expires_after_the_window(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.jpg").write_bytes(PHOTO)
    watcher = Watcher(redis_client, drop, settle_s=0.0)
    poll_until(watcher, lambda: watcher.published == 1, "a.jpg published")
    key = names.seen_key(hashlib.sha256(PHOTO).hexdigest())
    assert redis_client.get(key) == str(drop.resolve() / "a.jpg").encode()
    assert defaults.DEDUPE_WINDOW_S == 7 * 86400
    assert defaults.DEDUPE_WINDOW_S - 60 < redis_client.ttl(key) <= defaults.DEDUPE_WINDOW_S
    # One key per sha256, and nothing else: the legacy hash of every sha256 is not written.
    assert redis_client.keys(f"{names.PREFIX}:seen*") == [key.encode()]


def test_same_bytes_are_published_again_once_the_window_has_passed(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.jpg").write_bytes(PHOTO)
    watcher = Watcher(redis_client, drop, settle_s=0.0, dedupe_window_s=1)
    poll_until(watcher, lambda: watcher.published == 1, "a.jpg published")
    (drop / "b.jpg").write_bytes(PHOTO)
    poll_until(watcher, lambda: watcher.duplicates == 1, "b.jpg judged a duplicate")
    key = names.seen_key(hashlib.sha256(PHOTO).hexdigest())
    wait_until(lambda: redis_client.exists(key) == 0, timeout_s=5, what="the dedupe key expired")
    (drop / "c.jpg").write_bytes(PHOTO)
    poll_until(watcher, lambda: watcher.published == 2, "c.jpg published")
    assert published_names(redis_client) == ["a.jpg", "c.jpg"]
    assert (watcher.published, watcher.duplicates) == (2, 1)


def test_folder_memory_forgets_files_that_left_the_folder(tmp_path, redis_client):
    drop = tmp_path / "drop"
    (drop / "sub").mkdir(parents=True)
    for name, data in (("a.jpg", PHOTO), ("b.jpg", OTHER), ("sub/c.jpg", PHOTO + b"c")):
        (drop / name).write_bytes(data)
    watcher = Watcher(redis_client, drop, settle_s=0.0)
    poll_until(watcher, lambda: watcher.published == 3, "three files published")
    key = names.watch_key(watcher.folder_id)
    assert redis_client.hlen(key) == 3
    (drop / "a.jpg").unlink()
    poll_until(watcher, lambda: redis_client.hlen(key) == 2, "a.jpg forgotten")
    (drop / "sub" / "c.jpg").unlink()
    (drop / "sub").rmdir()
    poll_until(watcher, lambda: redis_client.hlen(key) == 1, "sub/c.jpg forgotten with its folder")
    assert redis_client.hkeys(key) == [str(drop.resolve() / "b.jpg").encode()]


def test_files_removed_while_the_watcher_was_down_are_forgotten_at_its_restart(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.jpg").write_bytes(PHOTO)
    (drop / "b.jpg").write_bytes(OTHER)
    first = Watcher(redis_client, drop, settle_s=0.0)
    poll_until(first, lambda: first.published == 2, "both published")
    (drop / "a.jpg").unlink()  # while no watcher runs
    second = Watcher(redis_client, drop, settle_s=0.0)
    second.poll_once()
    assert redis_client.hkeys(names.watch_key(second.folder_id)) == [str(drop.resolve() / "b.jpg").encode()]
    for _ in range(3):
        second.poll_once()
    assert (second.published, second.duplicates) == (0, 0)  # b.jpg still remembered, not re-read


def test_bytes_are_stored_under_the_key_derived_from_the_job_id(redis_client):
    for publish in (
        lambda job: dedupe.publish_unseen(redis_client, job, b"pixels"),
        lambda job: publishing.publish_image(redis_client, job, b"pixels"),
    ):
        job = job_for("/drop/a.jpg", b"pixels")
        job["image"]["blob"] = f"{names.PREFIX}:result:someone-else"  # a lying event
        publish(job)
        assert redis_client.get(names.blob_key(job["job_id"])) == b"pixels"
    assert redis_client.exists(f"{names.PREFIX}:result:someone-else") == 0
