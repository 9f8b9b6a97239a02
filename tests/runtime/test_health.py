"""Issue 14: a healthcheck that proves a worker is consuming, not only that Redis answers.

`faces health` reads the heartbeat each worker (and watcher) renews from its loop: a worker
that stops consuming (here: frozen with SIGSTOP, as a hung model call would be) turns
unhealthy, and one that stops cleanly takes its heartbeat with it. Real processes, real Redis."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from faces.ops import exits
from faces.streams import names
from tests.images import DATA
from tests.pipeline import REPO, faces_cli
from tests.waiting import wait_until

# A heartbeat comes every 5 s (faces/settings.py); 8 s is stale for a worker that stopped, never
# for one that runs (a sink batch of nothing takes a read of --block-ms).
MAX_AGE = ["--max-age-s", "8"]


def started(tmp_path: Path, *args: str) -> subprocess.Popen:
    log = open(tmp_path / f"{args[0]}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "faces", *args], cwd=REPO, stdout=log, stderr=log)


def health(redis_url: str, *args: str) -> subprocess.CompletedProcess:
    return faces_cli("health", "--redis-url", redis_url, *args, timeout=60)


def test_health_follows_a_worker_that_consumes_freezes_and_stops(tmp_path, redis_url):
    worker = started(
        tmp_path,
        "worker",
        "sink",
        "--redis-url",
        redis_url,
        "--consumer",
        "sink-a",
        "--no-visualize",
        "--storage",
        str(tmp_path / "storage"),
        "--block-ms",
        "200",
    )
    try:
        ok = wait_until(
            lambda: (done := health(redis_url, "--stage", "sink", *MAX_AGE)).returncode == exits.OK and done,
            timeout_s=90,
            what="the sink's first heartbeat",
        )
        assert ok.stdout.startswith("sink\tsink-a\tconsuming\t"), ok.stdout
        assert health(redis_url, "--local", *MAX_AGE).returncode == exits.OK  # the same host

        everything = health(redis_url, *MAX_AGE)
        assert everything.returncode == exits.FAILED
        assert everything.stderr.strip() == (
            "error: no worker of detect has a heartbeat: start one "
            "(`faces worker detect`, or `faces up`), or look at its log "
            "for why it stopped"
        )
        status = json.loads(faces_cli("status", "--json", "--redis-url", redis_url, timeout=60).stdout)
        assert [(w["stage"], w["consumer"]) for w in status["workers"]] == [("sink", "sink-a")]

        worker.send_signal(signal.SIGSTOP)  # alive, holding its connection, consuming nothing
        stuck = wait_until(
            lambda: (done := health(redis_url, "--stage", "sink", *MAX_AGE)).returncode == exits.FAILED and done,
            timeout_s=60,
            what="the frozen sink reported",
        )
        assert "no worker of sink is consuming: the last heartbeat is" in stuck.stderr
        assert "it is stuck or gone" in stuck.stderr

        worker.send_signal(signal.SIGCONT)
        wait_until(
            lambda: health(redis_url, "--stage", "sink", *MAX_AGE).returncode == exits.OK,
            timeout_s=60,
            what="the sink consuming again",
        )

        worker.terminate()
        assert worker.wait(timeout=60) == exits.OK
        gone = health(redis_url, "--stage", "sink")
        assert gone.returncode == exits.FAILED
        assert "no worker of sink has a heartbeat" in gone.stderr
    finally:
        worker.send_signal(signal.SIGCONT)
        worker.kill()
        worker.wait()


def test_the_drop_folder_watcher_has_a_heartbeat_too(tmp_path, redis_url):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    watcher = started(tmp_path, "watch", str(inbox), "--redis-url", redis_url)
    try:
        ok = wait_until(
            lambda: (done := health(redis_url, "--stage", "watch")).returncode == exits.OK and done,
            timeout_s=60,
            what="the watcher's heartbeat",
        )
        assert ok.stdout.startswith("watch\twatch-"), ok.stdout
        watcher.terminate()
        assert watcher.wait(timeout=30) == exits.OK
        assert health(redis_url, "--stage", "watch").returncode == exits.FAILED
    finally:
        watcher.kill()
        watcher.wait()


def test_a_watcher_held_back_by_a_full_pipeline_still_counts_as_alive(tmp_path, redis_url, redis_client):
    """Backpressure is not a hang: while the watcher waits for room (high-water 1, no workers
    drain anything), its heartbeat goes on. Before, it beat only between polls and a full
    pipeline made the compose watcher unhealthy."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(3):
        (inbox / f"p{i}.jpg").write_bytes((DATA / "astronaut.jpg").read_bytes() + bytes([i]))
    watcher = started(tmp_path, "watch", str(inbox), "--redis-url", redis_url, "--high-water", "1", "--settle-s", "0.1")
    try:
        wait_until(lambda: redis_client.scard(names.INFLIGHT) == 1, timeout_s=60, what="the pipeline full")
        held_since = time.monotonic()
        # Longer than the stale age asked for (8 s) plus a heartbeat period: each check passes.
        while time.monotonic() - held_since < 15:
            done = health(redis_url, "--stage", "watch", *MAX_AGE)
            assert done.returncode == exits.OK, done.stderr
        assert redis_client.scard(names.INFLIGHT) == 1, "the watcher was not held back"
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)
