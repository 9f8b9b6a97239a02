"""Backpressure waits keep the workers supervised: while a producer waits for room, the
callback it was given (a WorkerPool's supervise) keeps running, so a worker that died while the
high-water mark was reached is restarted and the wait can end.

The pools here are stand-ins that count calls (a real WorkerPool loads TensorFlow models); the
Redis, the watcher, `faces up`'s loop and the replay job are the real ones."""

from __future__ import annotations

import threading

import faces.ops.cli.pipeline
import faces.ops.jobs.replay
import faces.ops.supervise.pool
from faces.ops.jobs.run import JobOptions
from faces.ops.settings import AppSettings
from faces.producer.submit import submit_file
from faces.producer.watch import Watcher
from faces.streams import names, publishing
from tests.published import PHOTO, published_names
from tests.waiting import wait_until


def test_wait_for_room_runs_the_callback_until_there_is_room(redis_client):
    redis_client.sadd(names.INFLIGHT, "job-a", "job-b")
    backlog_seen: list[int] = []

    def supervise() -> None:
        backlog_seen.append(redis_client.scard(names.INFLIGHT))
        if len(backlog_seen) == 3:
            redis_client.srem(names.INFLIGHT, "job-a")  # a restarted worker finished one

    publishing.wait_for_room(redis_client, 2, poll_s=0.01, while_waiting=supervise)
    assert backlog_seen == [2, 2, 2]


def test_watcher_runs_its_callback_while_it_waits_for_room(tmp_path, redis_client):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "photo.jpg").write_bytes(PHOTO)
    redis_client.sadd(names.INFLIGHT, "someone-elses-job")
    calls: list[int] = []

    def supervise() -> None:
        calls.append(len(published_names(redis_client)))
        if len(calls) == 3:
            redis_client.delete(names.INFLIGHT)

    watcher = Watcher(redis_client, drop, settle_s=0.0, high_water=1, while_waiting=supervise)
    wait_until(lambda: watcher.poll_once() >= 0 and watcher.published, timeout_s=10, what="photo.jpg published")
    assert calls == [0, 0, 0]  # every call came while the file waited, unpublished
    assert published_names(redis_client) == ["photo.jpg"]


def test_up_supervises_its_workers_while_the_watcher_waits_for_room(tmp_path, redis_url, redis_client, monkeypatch):
    release_at = 10  # `up`'s own loop calls supervise about 3 times before the file settles (1 s)
    drop = tmp_path / "drop"
    drop.mkdir()
    # The backlog at `up`'s high-water mark (500): the watcher must wait.
    redis_client.sadd(names.INFLIGHT, *[f"job-{i}" for i in range(500)])

    class CountingPool:
        made: list[CountingPool] = []

        def __init__(self, url, log_dir, **_kwargs) -> None:
            self.calls = 0
            self.stops = 0
            CountingPool.made.append(self)

        workers: list = []

        def start(self) -> None:
            pass

        def waiting_for(self) -> list[str]:
            return []

        def supervise(self) -> None:
            self.calls += 1
            if self.calls == release_at:
                redis_client.delete(names.INFLIGHT)  # the restarted workers drained the backlog
            if published_names(redis_client):
                raise KeyboardInterrupt  # Ctrl-C: the test is over

        def stop(self) -> None:
            self.stops += 1

    monkeypatch.setattr(faces.ops.supervise.pool, "WorkerPool", CountingPool)
    monkeypatch.setattr(faces.ops.cli.pipeline, "_check_precision", lambda _settings: None)
    monkeypatch.setattr(faces.ops.cli.pipeline.logs, "configure", lambda **_kw: None)  # keep pytest's logging
    finished = threading.Event()

    def run_up() -> None:
        try:
            faces.ops.cli.pipeline.up(
                redis_url=redis_url,
                state_dir=tmp_path / "state",
                storage=tmp_path / "storage",
                output=tmp_path / "output",
                batch=8,
                watch_dir=drop,
                agegender="dlib",
            )
        finally:
            finished.set()

    threading.Thread(target=run_up, daemon=True).start()
    (drop / "photo.jpg").write_bytes(PHOTO)
    wait_until(finished.is_set, timeout_s=20, what="`up` published the file and stopped")
    [pool] = CountingPool.made
    assert pool.calls >= release_at and pool.stops == 1
    assert published_names(redis_client) == ["photo.jpg"]


def test_replay_supervises_the_workers_it_started_while_it_waits_for_room(
    tmp_path, redis_url, redis_client, monkeypatch
):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(PHOTO)
    submit_file(redis_client, photo)  # history to replay; its job stays in flight (no workers here)

    class Done(Exception):
        pass

    class CountingPool:
        def __init__(self) -> None:
            self.calls_while_full = 0
            self.stops = 0

        def supervise(self) -> None:
            if self.calls_while_full < 3:
                self.calls_while_full += 1
                if self.calls_while_full == 3:
                    redis_client.delete(names.INFLIGHT)
            elif redis_client.xlen(names.IMAGES) == 2:
                raise Done  # replayed: the rest (results) needs real workers

        def stop(self) -> None:
            self.stops += 1

    pool = CountingPool()
    monkeypatch.setattr(faces.ops.jobs.replay, "start_pool", lambda url, app, options: pool)
    app = AppSettings(
        redis_url=redis_url, state_dir=tmp_path / "state", storage=tmp_path / "storage", output=tmp_path / "output"
    )
    outcome: list[object] = []

    def run_replay() -> None:
        try:
            faces.ops.jobs.replay.replay_job(
                app,
                since=None,
                until=None,
                images=[],
                from_stage="detect",
                options=JobOptions(high_water=1, timeout_s=20),
            )
        except Done:
            outcome.append("replayed")
        except BaseException as exc:  # reported by the assert below
            outcome.append(exc)

    threading.Thread(target=run_replay, daemon=True).start()
    wait_until(lambda: outcome, timeout_s=15, what="the replay published")
    assert outcome == ["replayed"]
    assert pool.calls_while_full == 3 and pool.stops == 1
    assert published_names(redis_client) == ["photo.jpg", "photo.jpg"]
