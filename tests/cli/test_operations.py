"""Day-to-day operations against a real redis-server and real workers: replay, dead letters,
trim, status."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faces.models.agegender_bundled import NAME as BUNDLED_NAME
from faces.models.precision import FLOAT32, OPENCV_FLOAT32, PRECISION_ENV, choose_precision
from faces.ops.jobs.replay import replay_job
from faces.ops.jobs.run import JobOptions, run_job, start_pool
from faces.ops.settings import AppSettings
from faces.producer.files import job_for
from faces.producer.redrive import retry_letter
from faces.streams import deadletters, names, publishing
from tests.images import DATA
from tests.pipeline import faces_cli, result_files, total_pending
from tests.waiting import wait_until

WORKER_ARGS = ["--block-ms", "200", "--batch", "4"]


def app_for(tmp_path: Path, url: str) -> AppSettings:
    return AppSettings(
        redis_url=url, state_dir=tmp_path / "state", storage=tmp_path / "storage", output=tmp_path / "output"
    )


def options_for(app: AppSettings) -> JobOptions:
    return JobOptions(
        timeout_s=240,
        grace_s=10,
        worker_args={"*": [*WORKER_ARGS, "--storage", str(app.storage)], "sink": ["--output", str(app.output)]},
    )


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut.jpg", "group.jpg"):
        shutil.copy(DATA / name, folder / name)
    return folder


@pytest.mark.long  # four pipeline runs, DeepFace on two engines: 40-66 s on a fresh clone
def test_replay_by_window_by_image_and_from_agegender_once_weights_appear(
    tmp_path, redis_url, redis_client, photos, monkeypatch, synthetic_deepface_home_shared
):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "no-weights"))
    app = app_for(tmp_path, redis_url)
    first = run_job(app, [photos / "astronaut.jpg"], options_for(app))
    boundary = publishing_time_now(redis_client)
    second = run_job(app, [photos / "group.jpg"], options_for(app))
    assert (first.ok, second.ok) == (1, 1)
    before = result_files(app.storage)
    # No DeepFace weights: the bundled model gave the ages.
    assert {r["models"]["agegender"] for r in before.values()} == {BUNDLED_NAME}

    def replay_group_from_agegender():
        """The group photo replayed by image from the agegender stage, under today's environment."""
        group = [str(photos / "group.jpg")]
        return replay_job(app, since=None, until=None, images=group, from_stage="agegender", options=options_for(app))

    # By time window: only what was submitted after the boundary.
    summary, skipped = replay_job(
        app, since=boundary, until=None, images=[], from_stage="detect", options=options_for(app)
    )
    assert (summary.submitted, summary.ok, skipped) == (1, 1, [])
    after_window = result_files(app.storage)
    assert sorted(after_window) == sorted(before)  # overwritten in place, no new files
    group_id = next(k for k in before if k.startswith("group"))
    assert after_window[group_id]["processed_at"] > before[group_id]["processed_at"]

    # By image, and from the agegender stage once weights exist: boxes and points stay.
    monkeypatch.setenv("DEEPFACE_HOME", str(synthetic_deepface_home_shared))
    summary, skipped = replay_group_from_agegender()
    assert (summary.submitted, summary.ok) == (1, 1)
    filled = result_files(app.storage)[group_id]
    old = after_window[group_id]
    assert [f["box"] for f in filled["faces"]] == [f["box"] for f in old["faces"]]
    assert [f["landmarks"] for f in filled["faces"]] == [f["landmarks"] for f in old["faces"]]
    assert all(f["age"] is not None and f["gender"]["label"] in ("Woman", "Man") for f in filled["faces"])
    assert "agegender" not in filled["notes"]
    # The result names what computed the ages: DeepFace's networks, one trunk, the precision.
    precision = choose_precision()
    suffix = "" if precision == FLOAT32 else f"/{precision}"
    assert filled["models"]["agegender"] == "deepface-age+gender/shared-trunk" + suffix
    stored = json.loads(redis_client.get(names.result_key(group_id)))
    assert stored["faces"][0]["age"] == filled["faces"][0]["age"]
    assert total_pending(redis_client) == 0

    # The OpenCV engine (auto's pick on AVX2-only CPUs) through the real workers: named, filled.
    monkeypatch.setenv(PRECISION_ENV, OPENCV_FLOAT32)
    summary, _ = replay_group_from_agegender()
    assert (summary.submitted, summary.ok) == (1, 1)
    on_opencv = result_files(app.storage)[group_id]
    assert on_opencv["models"]["agegender"] == "deepface-age+gender/shared-trunk/opencv-float32"
    assert [f["box"] for f in on_opencv["faces"]] == [f["box"] for f in filled["faces"]]
    assert all(f["age"] is not None and f["gender"]["label"] in ("Woman", "Man") for f in on_opencv["faces"])
    assert total_pending(redis_client) == 0


def publishing_time_now(client) -> str:
    """A stream id for 'now' on the server's clock."""
    seconds, micros = client.time()
    return f"{seconds * 1000 + micros // 1000}-0"


def test_dead_letter_retry_reprocesses_the_image(tmp_path, redis_url, redis_client, photos, monkeypatch):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "no-weights"))
    app = app_for(tmp_path, redis_url)
    # A job whose bytes vanished (e.g. purged): dead-lettered at detect, error result written.
    path = photos / "astronaut.jpg"
    job = job_for(str(path), path.read_bytes())
    publishing.publish_image(redis_client, job, b"")
    redis_client.delete(names.blob_key(job["job_id"]))
    summary = run_job(app, [photos / "group.jpg"], options_for(app))
    assert summary.ok == 1
    wait_until(lambda: job["image_id"] in result_files(app.storage), what="error result")
    assert result_files(app.storage)[job["image_id"]]["error"]["type"] == "ImageMissing"
    letter = deadletters.list_all(redis_client)[0]
    assert letter.error_type == "ImageMissing" and letter.stage == "detect"

    retry_letter(redis_client, letter)  # the file is still there: bytes restored, entry re-queued
    assert deadletters.count(redis_client) == 0
    pool = start_pool(redis_url, app, options_for(app))
    try:
        wait_until(
            lambda: result_files(app.storage)[job["image_id"]]["status"] == "ok",
            timeout_s=90,
            what="ok result after retry",
        )
    finally:
        pool.stop()


def test_trim_and_status_commands(tmp_path, redis_url, redis_client, photos, monkeypatch):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "no-weights"))
    app = app_for(tmp_path, redis_url)
    run_job(app, [photos], options_for(app))
    status = faces_cli("status", "--json", "--redis-url", redis_url)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    streams = {s["name"]: s for s in data["streams"]}
    assert streams[names.IMAGES]["length"] == 2
    detect = streams[names.IMAGES]["groups"][0]
    assert (detect["name"], detect["pending"], detect["lag"]) == ("detect", 0, 0)
    assert data["dead_letters"] == 0
    trimmed = faces_cli("trim", "--redis-url", redis_url, "--retention-s", "0")
    assert trimmed.returncode == 0, trimmed.stderr
    for stream in names.PIPELINE_STREAMS:
        assert redis_client.xlen(stream) == 0, stream  # every entry acknowledged: all trimmed
