"""Issue 22 item 10: the drop-folder watcher that `faces up --watch` runs inside its own loop
renews a heartbeat like `faces watch` does, so `faces health --stage watch` says it is watching
while it does, and not once the stack stopped. Real `faces up` process, real Redis 6.2."""

from __future__ import annotations

import subprocess

from faces.ops import exits
from tests.pipeline import faces_cli, faces_process
from tests.waiting import wait_until


def watch_health(redis_url: str) -> subprocess.CompletedProcess:
    return faces_cli("health", "--stage", "watch", "--redis-url", redis_url, timeout=60)


def test_faces_up_watch_has_a_heartbeat_while_it_watches_and_none_after(tmp_path, redis_url):
    """`faces health --stage watch` exits 0 naming the watcher while `faces up --watch` runs,
    and 1 ('no worker of watch has a heartbeat') once it stopped, Redis still up."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    log = open(tmp_path / "up.log", "wb")
    up = faces_process(
        *("up", "--watch", str(inbox), "--redis-url", redis_url, "--state-dir", str(tmp_path / "state")),
        *("--storage", str(tmp_path / "storage"), "--no-visualize"),
        stdout=log,
        stderr=log,
        env={"DEEPFACE_HOME": str(tmp_path / "no-weights")},
    )
    try:
        watching = wait_until(
            lambda: (done := watch_health(redis_url)).returncode == exits.OK and done,
            timeout_s=90,
            what="the heartbeat of faces up's watcher",
        )
        rows = [line.split("\t") for line in watching.stdout.splitlines()]
        assert len(rows) == 1 and rows[0][0] == "watch" and rows[0][2] == "consuming", watching.stdout
        up.terminate()  # SIGTERM stops `faces up` as Ctrl-C does
        assert up.wait(timeout=60) in (exits.OK, exits.INTERRUPTED)  # not what this proves
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    stopped = watch_health(redis_url)
    assert stopped.returncode == exits.FAILED
    assert "no worker of watch has a heartbeat" in stopped.stderr, stopped.stderr
