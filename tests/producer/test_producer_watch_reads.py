"""How the watcher reads: a failed read is retried later, and only regular files are read (a
FIFO cannot block it, a symlink swapped in while the file settled is refused), only inside the
drop folder (a folder on the path swapped for a symlink is refused) and only the file listed."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path

import faces.producer.watch
from faces.producer.watch import Watcher
from faces.streams import names
from tests.published import OTHER, PHOTO, published, published_names
from tests.waiting import wait_until


def test_a_failed_read_is_retried_later_and_the_file_published_once(tmp_path, redis_client, monkeypatch):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "flaky.jpg").write_bytes(PHOTO)
    real_read = faces.producer.watch.read_job
    calls: list[str] = []

    def failing_twice(path, *args, **kwargs):
        calls.append(os.path.basename(path))
        if len(calls) <= 2:  # e.g. a permission fixed a moment later, an NFS hiccup
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(faces.producer.watch, "read_job", failing_twice)
    watcher = Watcher(redis_client, drop, settle_s=0.0, read_retry_min_s=0.05)
    wait_until(
        lambda: watcher.poll_once() >= 0 and published(redis_client),
        timeout_s=5,
        what="flaky.jpg published after its failed reads",
    )
    for _ in range(3):
        watcher.poll_once()
    assert calls == ["flaky.jpg"] * 3
    assert published_names(redis_client) == ["flaky.jpg"]
    assert (watcher.published, watcher.read_failures, watcher.duplicates) == (1, 2, 0)


def test_a_symlink_swapped_in_while_the_file_settles_is_refused(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(OTHER)
    target = drop / "photo.jpg"
    target.write_bytes(PHOTO)
    watcher = Watcher(redis_client, drop, settle_s=0.3)
    assert watcher.poll_once() == 0  # seen, settling
    swap = drop / ".swap"
    os.symlink(secret, swap)
    os.replace(swap, target)  # the name now points outside the folder
    (drop / "later.jpg").write_bytes(PHOTO)  # a regular file that settles after the swap
    wait_until(lambda: watcher.poll_once() >= 0 and published(redis_client), timeout_s=5, what="a publication")
    for _ in range(3):
        watcher.poll_once()
    assert published_names(redis_client) == ["later.jpg"]
    assert [j["image"]["sha256"] for j in published(redis_client)] == [hashlib.sha256(PHOTO).hexdigest()]
    assert watcher.refused == 1


def test_a_fifo_is_refused_without_blocking_the_watcher(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    os.mkfifo(drop / "a_pipe.jpg")  # sorted first: read before the real file
    (drop / "b_real.jpg").write_bytes(PHOTO)
    watcher = Watcher(redis_client, drop, settle_s=0.0, poll_s=0.02)
    stop, thread = running(watcher)
    try:
        wait_until(lambda: published(redis_client), timeout_s=5, what="b_real.jpg published")
    finally:
        stop.set()
        _unblock_reader(drop / "a_pipe.jpg")
        thread.join(5)
    for _ in range(3):
        watcher.poll_once()
    assert published_names(redis_client) == ["b_real.jpg"]
    assert not thread.is_alive()


def test_a_fifo_swapped_in_while_settling_is_refused_at_open(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    target = drop / "photo.jpg"
    target.write_bytes(b"")  # an empty regular file, the size of the FIFO that replaces it
    watcher = Watcher(redis_client, drop, settle_s=0.3, poll_s=0.02)
    assert watcher.poll_once() == 0  # seen, settling
    os.mkfifo(drop / ".fifo")
    os.replace(drop / ".fifo", target)
    (drop / "later.jpg").write_bytes(PHOTO)
    stop, thread = running(watcher)  # a thread: code that opens the FIFO blocking would hang
    try:
        wait_until(
            lambda: watcher.refused and published(redis_client),
            timeout_s=5,
            what="the FIFO refused and later.jpg published",
        )
    finally:
        stop.set()
        _unblock_reader(target)
        thread.join(5)
    assert published_names(redis_client) == ["later.jpg"]
    assert watcher.refused == 1


def test_a_folder_swapped_for_a_symlink_while_waiting_for_room_never_leaks_the_outside_file(tmp_path, redis_client):
    """Issue 22 item 13: a decoy with the victim's size and mtime is listed in a sub-folder; while
    the watcher waits for room (the backpressure wait between listing and reading), the sub-folder
    is swapped for a symlink to the victim's folder. The victim's bytes are never published: the
    read is refused (no link below the drop folder is followed), and nothing else is published."""
    victim = tmp_path / "private" / "photo.jpg"
    victim.parent.mkdir()
    victim.write_bytes(OTHER)
    drop = tmp_path / "drop"
    decoy = drop / "sub" / "photo.jpg"
    decoy.parent.mkdir(parents=True)
    decoy.write_bytes(bytes(len(OTHER)))
    stat = victim.stat()
    os.utime(decoy, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    redis_client.sadd(names.INFLIGHT, "another-producers-job")  # the pipeline is full
    swaps: list[str] = []

    def attacker_swaps_then_room_frees() -> None:
        if not swaps:
            os.rename(drop / "sub", drop / ".decoy")
            os.symlink(victim.parent, drop / "sub")
            swaps.append("sub")
            redis_client.srem(names.INFLIGHT, "another-producers-job")

    watcher = Watcher(redis_client, drop, settle_s=0.0, high_water=1, while_waiting=attacker_swaps_then_room_frees)
    for _ in range(3):
        watcher.poll_once()
    assert swaps == ["sub"]
    assert [j["image"]["sha256"] for j in published(redis_client)] == []
    assert not [
        key
        for key in redis_client.scan_iter()
        if redis_client.type(key) == b"string" and redis_client.get(key) == OTHER
    ], "the victim's bytes are stored in Redis"
    assert (watcher.published, watcher.refused) == (0, 1)


def test_a_file_replaced_by_another_between_listing_and_reading_settles_before_it_is_read(tmp_path, redis_client):
    """The opened file must be the one listed: a file renamed over the listed one while the
    watcher waited for room (same size and mtime, other bytes) is not read in that pass; it
    settles as a file of its own, then is published once, and the first file never is."""
    drop = tmp_path / "drop"
    drop.mkdir()
    listed = drop / "photo.jpg"
    listed.write_bytes(bytes(len(PHOTO)))
    stat = listed.stat()
    replacement = drop / ".incoming"
    replacement.write_bytes(PHOTO)
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    redis_client.sadd(names.INFLIGHT, "another-producers-job")

    def replace_then_room_frees() -> None:
        if replacement.exists():
            os.replace(replacement, listed)
            redis_client.srem(names.INFLIGHT, "another-producers-job")

    watcher = Watcher(redis_client, drop, settle_s=0.0, high_water=1, while_waiting=replace_then_room_frees)
    assert watcher.poll_once() == 0  # the listed file was replaced: not read
    assert published(redis_client) == []
    wait_until(lambda: watcher.poll_once() or published(redis_client), timeout_s=5, what="the replacement published")
    for _ in range(3):
        watcher.poll_once()
    assert [j["image"]["sha256"] for j in published(redis_client)] == [hashlib.sha256(PHOTO).hexdigest()]
    assert (watcher.published, watcher.refused) == (1, 0)


def running(watcher: Watcher) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop.is_set,), daemon=True)
    thread.start()
    return stop, thread


def _unblock_reader(fifo: Path) -> None:
    """Code that opens the FIFO without O_NONBLOCK waits for a writer: be one, so its thread ends."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # no reader blocked in open: nothing to release
