"""The worker pool's rules for workers that die (ops/supervise/pool.py), with real `faces worker`
processes against a real redis-server: a worker that keeps failing stops the command with its
own last error line, ready or not; a worker stopped by a signal, also while it loads its models
or in its first half second, is restarted and never counted as a failure."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from faces.ops import exits
from faces.ops.supervise import pool as worker_pool
from faces.ops.supervise.pool import Worker, WorkerCrashLooping, WorkerPool
from tests.pipeline import REPO
from tests.waiting import wait_until

NO_STAGES = {"detect": 0, "landmarks": 0, "agegender": 0, "embed": 0, "sink": 0}
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def one_worker_pool(url: str, tmp_path: Path, stage: str) -> WorkerPool:
    """A pool running one `faces worker STAGE` process (quick reads, storage in tmp_path)."""
    return WorkerPool(
        url,
        tmp_path / "logs",
        grace_s=5,
        counts={**NO_STAGES, stage: 1},
        extra_args={"*": ["--block-ms", "100", "--storage", str(tmp_path / "storage")], "sink": ["--no-visualize"]},
    )


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (the CLI's, then the worker's own)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & SIGTERM_BIT)


def restarted_and_ready(pool: WorkerPool, worker: Worker, restarts: int) -> bool:
    pool.supervise()
    return worker.restarts == restarts and worker.ready


def test_a_worker_that_fails_right_after_getting_ready_stops_the_pool_with_its_error_line(
    redis_server, redis_client, tmp_path
):
    """Redis refuses a command the consume loop needs at once (XAUTOCLAIM, by ACL): the sink
    worker gets ready, fails, is restarted, and on its MAX_CRASHES-th failure within the window
    the pool raises with the worker's own error line (before, a worker that had been ready was
    restarted for ever and `faces run` waited for ever)."""
    redis_client.acl_setuser("noclaim", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-xautoclaim"])
    pool = one_worker_pool(f"unix://noclaim:pw@{redis_server.socket}", tmp_path, "sink")
    pool.start()
    [worker] = pool.workers
    try:
        with pytest.raises(WorkerCrashLooping) as failure:
            wait_until(lambda: pool.supervise() or False, timeout_s=60, what="the pool to give up")
    finally:
        pool.stop()
    crashes, window_s = worker_pool.MAX_CRASHES, worker_pool.CRASH_WINDOW_S
    message = str(failure.value)
    assert message.startswith(f"the sink worker failed {crashes} times within {window_s:.0f} s: ")
    assert "xautoclaim" in message and str(worker.log_path) in message
    assert worker.was_ready and worker.restarts == crashes - 1 and len(worker.crashes) == crashes
    assert worker.log_path.read_text().count('"worker.ready"') == crashes  # ready every time


def test_crashes_count_only_within_the_window():
    """Failures minutes apart are a worker that fails now and then, restarted for good: only
    those within CRASH_WINDOW_S of each other add up to a crash loop."""
    window_s = worker_pool.CRASH_WINDOW_S
    worker = Worker("sink", "sink-0", [], Path("unused.log"))
    assert [worker.count_crash(t) for t in (0.0, 10.0)] == [1, 2]
    assert worker.count_crash(window_s + 5.0) == 2  # the first has left the window
    assert worker.count_crash(window_s + 6.0) == 3


def test_a_worker_killed_by_a_signal_while_it_loads_its_models_is_restarted(redis_url, tmp_path):
    """An OOM kill (SIGKILL) while the detect worker loads its models, before it was ever ready,
    is not the worker's own failure: the pool restarts it instead of ending with 'could not
    start'."""
    pool = one_worker_pool(redis_url, tmp_path, "detect")
    pool.start()
    [worker] = pool.workers
    try:
        # Its own SIGTERM handler is set just before the models load; ready comes after.
        wait_until(lambda: catches_sigterm(worker.process.pid), what="the worker starting")
        assert not worker.ready_file.exists()
        worker.process.kill()
        worker.process.wait()
        wait_until(
            lambda: restarted_and_ready(pool, worker, 1), timeout_s=60, what="the detect worker restarted and ready"
        )
    finally:
        pool.stop()


def test_a_sigterm_in_a_workers_first_half_second_is_not_a_failed_start(redis_url, tmp_path):
    """A SIGTERM that reaches a worker before it set its own handler ends it through the CLI's
    (exit 130, as a Ctrl-C): the worker was stopped, it did not fail to start, so the pool
    restarts it (it used to raise 'could not start'). The worker signals itself at the start of
    run_worker on its first start only (tests/early_sigterm_worker.py): no aim at a time window."""
    pool = WorkerPool(redis_url, tmp_path / "logs", grace_s=5, counts=NO_STAGES)
    consumer = pool.consumer_name("sink", 0)
    command = [
        sys.executable,
        "-m",
        "tests.early_sigterm_worker",
        str(tmp_path / "signalled-once"),
        "sink",
        "--consumer",
        consumer,
        "--block-ms",
        "100",
        "--storage",
        str(tmp_path / "storage"),
        "--no-visualize",
    ]
    worker = Worker(
        "sink",
        consumer,
        command,
        tmp_path / "logs" / "sink-0.log",
        {"FACES_REDIS_URL": redis_url, "PYTHONPATH": str(REPO)},
        "sink-0",
    )
    pool.workers.append(worker)
    worker.start()
    try:
        first = worker.process
        assert first.wait(timeout=60) == exits.INTERRUPTED
        wait_until(
            lambda: restarted_and_ready(pool, worker, 1), timeout_s=60, what="the sink worker restarted and ready"
        )
    finally:
        pool.stop()
    assert worker.crashes == []
