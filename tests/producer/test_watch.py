"""The drop-folder watcher against a real redis-server (publishing only; no workers needed)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from faces.producer.watch import Watcher
from tests.published import OTHER, PHOTO, published, published_names  # noqa: E402
from tests.waiting import wait_until


def running(watcher: Watcher):
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop.is_set,), daemon=True)
    thread.start()
    return stop, thread


def test_half_written_file_is_published_only_when_complete(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    watcher = Watcher(redis_client, drop, settle_s=0.6, poll_s=0.05)
    stop, thread = running(watcher)
    target = drop / "slow.jpg"
    with open(target, "wb") as handle:
        handle.write(PHOTO[: len(PHOTO) // 2])
        handle.flush()
        time.sleep(0.4)  # a slow writer: pauses shorter than settle_s
        handle.write(PHOTO[len(PHOTO) // 2 :])
    wait_until(lambda: published(redis_client), what="the file published")
    time.sleep(1.0)  # give a wrong second publication the chance to happen
    stop.set()
    thread.join(5)
    jobs = published(redis_client)
    assert len(jobs) == 1
    assert jobs[0]["image"]["sha256"] == hashlib.sha256(PHOTO).hexdigest()
    assert jobs[0]["image"]["bytes"] == len(PHOTO)


def test_a_file_created_in_the_tick_the_folder_was_listed_is_still_published(tmp_path, redis_client):
    """A folder's mtime has a coarse tick (a few ms) and is read after the folder is listed.
    A file created in the same tick as the listing, or between the listing and the stat,
    leaves the folder's mtime equal to the one remembered with a listing that lacks it: the
    watcher must not skip the folder for ever (CI: a file written right after the watcher
    started was never published)."""
    drop = tmp_path / "drop"
    drop.mkdir()
    watcher = Watcher(redis_client, drop, settle_s=0.0, poll_s=0.01)
    watcher.poll_once()  # lists the empty folder and remembers its mtime
    listed_mtime_ns = os.stat(drop).st_mtime_ns
    (drop / "same-tick.jpg").write_bytes(PHOTO)
    os.utime(drop, ns=(listed_mtime_ns, listed_mtime_ns))  # the creation landed in the same tick
    wait_until(lambda: watcher.poll_once(), timeout_s=10, what="same-tick.jpg published")
    assert published_names(redis_client) == ["same-tick.jpg"]


def test_a_same_tick_file_on_a_mount_whose_clock_runs_behind_is_still_published(tmp_path, redis_client):
    """The same race on a file server whose clock is a minute behind this one: its mtimes look
    old the moment they are stamped, so judging them against this machine's time would trust
    the listing that lacks the file (the first fix did, until a review asked)."""
    drop = tmp_path / "drop"
    drop.mkdir()
    behind_ns = os.stat(drop).st_mtime_ns - 60 * 10**9
    os.utime(drop, ns=(behind_ns, behind_ns))  # the server stamped the folder a minute "ago"
    watcher = Watcher(redis_client, drop, settle_s=0.0, poll_s=0.01)
    watcher.poll_once()
    (drop / "behind.jpg").write_bytes(PHOTO)
    os.utime(drop, ns=(behind_ns, behind_ns))  # created in the tick the listing saw
    wait_until(lambda: watcher.poll_once(), timeout_s=10, what="behind.jpg published")
    assert published_names(redis_client) == ["behind.jpg"]


def test_same_bytes_under_two_names_are_published_once_unless_forced(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.jpg").write_bytes(PHOTO)
    (drop / "copy of a.JPG").write_bytes(PHOTO)
    watcher = Watcher(redis_client, drop, settle_s=0.0, poll_s=0.01)
    wait_until(lambda: watcher.poll_once() or watcher.published + watcher.duplicates == 2, what="both handled")
    assert (watcher.published, watcher.duplicates) == (1, 1)
    forced = tmp_path / "forced"
    forced.mkdir()
    (forced / "again.jpg").write_bytes(PHOTO)
    again = Watcher(redis_client, forced, settle_s=0.0, force=True)
    wait_until(lambda: again.poll_once(), what="forced publication")
    assert len(published(redis_client)) == 2


def test_restart_publishes_files_dropped_while_down_and_not_the_old_ones(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "old.jpg").write_bytes(PHOTO)
    first = Watcher(redis_client, drop, settle_s=0.0)
    wait_until(lambda: first.poll_once(), what="old.jpg published")
    (drop / "new.jpg").write_bytes(OTHER)  # arrives while no watcher runs
    second = Watcher(redis_client, drop, settle_s=0.0)
    wait_until(lambda: second.poll_once(), what="new.jpg published")
    for _ in range(3):
        second.poll_once()
    paths = [Path(j["image"]["path"]).name for j in published(redis_client)]
    assert paths == ["old.jpg", "new.jpg"]
    assert second.duplicates == 0  # old.jpg was not even read again


def test_hidden_temporary_non_image_and_symlinked_files_are_ignored(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(OTHER)
    os.symlink(outside, drop / "link.jpg")
    os.symlink(tmp_path, drop / "linkdir")
    (drop / ".hidden.jpg").write_bytes(PHOTO)
    (drop / "upload.jpg.part").write_bytes(PHOTO)
    (drop / "notes.txt").write_text("hello")
    (drop / "real.jpg").write_bytes(PHOTO)
    watcher = Watcher(redis_client, drop, settle_s=0.0)
    wait_until(lambda: watcher.poll_once(), what="real.jpg published")
    for _ in range(3):
        watcher.poll_once()
    assert [Path(j["image"]["path"]).name for j in published(redis_client)] == ["real.jpg"]
