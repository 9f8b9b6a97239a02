"""Issue 22 item 11: which result an image keeps is decided on the clock every producer shares
(Redis's, stamped when a job is published), never on a submitter's own clock; and a job whose
result was not kept is announced `superseded`, never `ok`. Real CLI, real worker processes,
real Redis 6.2, real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faces.ops import exits
from faces.ops.jobs.run import JobOptions, start_pool
from faces.ops.settings import AppSettings
from faces.streams import history, names
from tests.images import DATA
from tests.pipeline import REPO, TRACEBACK, faces_cli, result_files
from tests.waiting import wait_until

SKEW_S = 120
# `faces ARGS...` in a process whose clock runs SKEW_S ahead (its time.time(), nothing else).
SKEWED_FACES = (
    "import runpy, sys, time\n"
    "real = time.time\n"
    f"time.time = lambda: real() + {SKEW_S}\n"
    "sys.argv = ['faces', *sys.argv[1:]]\n"
    "runpy.run_module('faces', run_name='__main__')\n"
)


@pytest.fixture
def photo(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "no-weights"))  # the bundled age model
    folder = tmp_path / "photos"
    folder.mkdir()
    return Path(shutil.copy(DATA / "astronaut.jpg", folder / "astronaut.jpg"))


def placed(tmp_path: Path, redis_url: str) -> list[str]:
    """Where a command's Redis, state and storage are: the test's own."""
    return ["--redis-url", redis_url, "--state-dir", str(tmp_path / "state"), "--storage", str(tmp_path / "storage")]


def common(tmp_path: Path, redis_url: str) -> list[str]:
    return [*placed(tmp_path, redis_url), "--no-visualize"]


def announcements(client) -> list[tuple[str, str]]:
    """(job id, status) of every entry of the results stream, in order."""
    return [(f[b"job_id"].decode(), f[b"status"].decode()) for _, f in client.xrange(names.RESULTS)]


def stored_job(client, storage: Path, image_id: str) -> tuple[str, str]:
    """The job id of the image's result kept in Redis, and of the one in its file."""
    in_redis = json.loads(client.get(names.result_key(image_id)))["job_id"]
    return in_redis, result_files(storage)[image_id]["job_id"]


def pool_for(tmp_path: Path, redis_url: str):
    app = AppSettings(redis_url=redis_url, state_dir=tmp_path / "state", storage=tmp_path / "storage")
    return start_pool(
        redis_url,
        app,
        JobOptions(
            grace_s=10, worker_args={"*": ["--block-ms", "200", "--storage", str(app.storage), "--no-visualize"]}
        ),
    )


def test_a_replay_outranks_a_submission_from_a_clock_running_ahead(tmp_path, redis_url, redis_client, photo):
    """A submitter whose clock runs 120 s ahead submits and gets its result; a replay made
    right after is the newer submission on Redis's clock: its result is the one kept in Redis
    and in the file, and both jobs are announced ok, each having been kept in turn."""
    pool = pool_for(tmp_path, redis_url)
    try:
        skewed = subprocess.run(
            [
                sys.executable,
                "-c",
                SKEWED_FACES,
                "submit",
                str(photo),
                "--wait",
                "--timeout-s",
                "240",
                *common(tmp_path, redis_url)[:2],
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert skewed.returncode == exits.OK and TRACEBACK not in skewed.stderr, skewed.stderr
        first = json.loads(skewed.stdout)
        assert first["status"] == "ok"
        replayed = faces_cli("replay", "--image", str(photo), "--timeout-s", "240", *common(tmp_path, redis_url))
        assert replayed.returncode == exits.OK, replayed.stdout + replayed.stderr
        assert "replayed 1 image from detect: 1 ok, 0 error, 0 dead-lettered" in replayed.stdout
    finally:
        pool.stop()
    [(first_job, first_status), (replay_job, replay_status)] = announcements(redis_client)
    assert (first_job, first_status, replay_status) == (first["job_id"], "ok", "ok")
    assert stored_job(redis_client, tmp_path / "storage", first["image_id"]) == (replay_job, replay_job)
    kept = json.loads(redis_client.get(names.result_key(first["image_id"])))
    assert kept["submitted_at"] > first["submitted_at"]  # both on Redis's clock


def test_a_job_finishing_after_a_newer_submission_is_announced_superseded(tmp_path, redis_url, redis_client, photo):
    """An image is submitted again (job A) while no worker runs, then replayed from the sink
    (job B, newer) from its first result: B reaches the sink first and is kept. A finishes
    last; its result is kept neither in Redis nor in the file, and it is announced
    `superseded`, not `ok`."""
    ran = faces_cli("run", str(photo), "--timeout-s", "240", *common(tmp_path, redis_url))
    assert ran.returncode == exits.OK, ran.stderr
    submitted = faces_cli("submit", str(photo), "--redis-url", redis_url)
    assert submitted.returncode == exits.OK, submitted.stderr
    image_id = submitted.stdout.split("\t")[0]
    [(_, first), (_, again)] = history.submitted_jobs(redis_client)
    replayed = faces_cli(
        "replay", "--image", str(photo), "--from-stage", "sink", "--timeout-s", "240", *common(tmp_path, redis_url)
    )
    assert replayed.returncode == exits.OK, replayed.stdout + replayed.stderr
    assert "replayed 1 image from sink: 1 ok" in replayed.stdout
    pool = pool_for(tmp_path, redis_url)  # finishes A if the replay's workers stopped before it did
    try:
        wait_until(lambda: len(announcements(redis_client)) == 3, timeout_s=120, what="job A's announcement")
    finally:
        pool.stop()
    [(run_job, run_status), (replay_job, replay_status), (late_job, late_status)] = announcements(redis_client)
    assert (run_job, late_job) == (first["job_id"], again["job_id"])
    assert (run_status, replay_status, late_status) == ("ok", "ok", "superseded")
    assert stored_job(redis_client, tmp_path / "storage", image_id) == (replay_job, replay_job)
    assert redis_client.scard(names.INFLIGHT) == 0
    assert os.listdir(tmp_path / "storage") == [f"{image_id}.json"]


def test_the_watcher_stamps_its_jobs_on_redis_clock_not_its_own(tmp_path, redis_url, redis_client):
    """`faces watch` on a host whose clock runs SKEW_S ahead publishes its job with Redis's time
    (the review found the watcher still stamped its own clock, so a watched photo outranked
    every later replay); read back from the images stream, within a few seconds of TIME."""
    from faces.schemas import events
    from faces.streams.reading import PAYLOAD_FIELD

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(DATA / "astronaut.jpg", inbox / "astronaut.jpg")
    watcher = subprocess.Popen(
        [sys.executable, "-c", SKEWED_FACES, "watch", str(inbox), *placed(tmp_path, redis_url)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: redis_client.xlen(names.IMAGES) == 1 or watcher.poll() is not None,
            timeout_s=60,
            what="the watched photo published",
        )
    finally:
        watcher.terminate()
        _, err = watcher.communicate(timeout=30)
    assert TRACEBACK not in err.decode(), err.decode()
    [(_, fields)] = redis_client.xrange(names.IMAGES)
    job = events.decode(fields[PAYLOAD_FIELD])
    seconds, micros = redis_client.time()
    assert abs(job["submitted_at"] - (seconds + micros / 1e6)) < SKEW_S / 4
