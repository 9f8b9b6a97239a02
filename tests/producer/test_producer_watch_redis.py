"""The watcher outlasts Redis trouble: a restarted server, a server out of memory. The file in
hand waits (with backoff) and is published once Redis answers again, exactly once."""

from __future__ import annotations

import threading

import pytest

from faces.producer.files import job_for
from faces.producer.watch import Watcher
from faces.streams import dedupe, names, publishing
from tests.published import OTHER, PHOTO, published_names
from tests.redis_errors import LASTING, PASSING
from tests.waiting import wait_until


class Waits:
    """A while_waiting callback that counts how often the watcher waited."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def running(watcher: Watcher) -> tuple[threading.Event, threading.Thread, list[BaseException]]:
    stop = threading.Event()
    crashed: list[BaseException] = []

    def run() -> None:
        try:
            watcher.run(stop.is_set)
        except BaseException as exc:  # the test asserts there was none
            crashed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return stop, thread, crashed


def stopped(watcher: Watcher, stop: threading.Event, thread: threading.Thread) -> None:
    """Stop the thread, then give a wrong second publication a few passes to happen."""
    stop.set()
    thread.join(10)
    for _ in range(3):
        watcher.poll_once()


# Both server versions: they word errors (and errors inside scripts) differently.
BOTH_VERSIONS = pytest.mark.parametrize("redis_version", ["redis6", "redis7"], indirect=True)


@BOTH_VERSIONS
def test_watcher_outlasts_a_redis_restart_and_publishes_the_file_once(tmp_path, redis_server, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    waits = Waits()
    watcher = Watcher(redis_client, drop, settle_s=0.0, poll_s=0.02, high_water=0, while_waiting=waits)
    stop, thread, crashed = running(watcher)
    redis_server.kill()
    (drop / "during_outage.jpg").write_bytes(PHOTO)
    wait_until(lambda: waits.calls > 0 or crashed, timeout_s=30, what="the watcher waiting for Redis")
    assert crashed == []
    redis_server.start()  # same socket, its append-only file
    wait_until(lambda: watcher.published == 1 or crashed, timeout_s=30, what="published after the restart")
    (drop / "after.jpg").write_bytes(OTHER)
    wait_until(lambda: watcher.published == 2 or crashed, timeout_s=10, what="the next file published")
    stopped(watcher, stop, thread)
    assert crashed == []
    assert published_names(redis_client) == ["during_outage.jpg", "after.jpg"]
    assert (watcher.published, watcher.duplicates) == (2, 0)
    assert sorted(redis_client.hkeys(names.watch_key(watcher.folder_id))) == [
        str(drop.resolve() / "after.jpg").encode(),
        str(drop.resolve() / "during_outage.jpg").encode(),
    ]


@BOTH_VERSIONS
def test_watcher_waits_out_an_out_of_memory_server(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    waits = Waits()
    watcher = Watcher(redis_client, drop, settle_s=0.0, poll_s=0.02, high_water=0, while_waiting=waits)
    redis_client.config_set("maxmemory", 1)  # every write now fails with OOM (noeviction)
    stop, thread, crashed = running(watcher)
    (drop / "photo.jpg").write_bytes(PHOTO)
    wait_until(lambda: waits.calls > 0 or crashed, timeout_s=10, what="the watcher waiting on OOM")
    assert crashed == [] and published_names(redis_client) == []
    redis_client.config_set("maxmemory", 0)
    wait_until(lambda: watcher.published == 1 or crashed, timeout_s=30, what="published once memory is back")
    stopped(watcher, stop, thread)
    assert crashed == []
    assert published_names(redis_client) == ["photo.jpg"]


def test_publishing_the_same_job_again_after_a_lost_reply_adds_it_once(redis_client):
    # A retry after a reply lost on the wire sends the same job (same job id) again.
    job = job_for("/drop/a.jpg", PHOTO)
    first = dedupe.publish_unseen(redis_client, job, PHOTO)
    again = dedupe.publish_unseen(redis_client, job, PHOTO)
    forced_again = dedupe.publish_unseen(redis_client, job, PHOTO, force=True)
    assert (first.status, again.status, forced_again.status) == ("published", "already", "already")
    assert redis_client.xlen(names.IMAGES) == 1


def test_only_errors_that_pass_are_retried():
    """Publishing retries every reply that passes (tests/redis_errors.py: PASSING) and none that lasts."""
    assert [publishing.is_transient(e) for e in PASSING] == [True] * len(PASSING)
    assert [publishing.is_transient(e) for e in LASTING] == [False] * len(LASTING)
