"""The whole pipeline: every stage in its own worker process, through a real redis-server."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import jsonschema
import pytest

from faces.models.agegender_bundled import NAME as BUNDLED_NAME
from faces.ops import exits
from faces.ops.supervise.pool import WorkerPool
from faces.producer.files import job_for
from faces.producer.submit import submit_file
from faces.schemas import events
from faces.schemas.result import load_schema
from faces.streams import deadletters, names
from faces.streams.reading import PAYLOAD_FIELD
from tests.images import DATA, photo_variants
from tests.pipeline import announced_job_ids, consumer_pending, faces_cli, result_files, run_args, total_pending
from tests.waiting import wait_until

FAST_WORKERS = ["--block-ms", "200", "--claim-idle-ms", "3000", "--batch", "4"]


@pytest.fixture
def no_weights(tmp_path, monkeypatch) -> Path:
    """An empty DEEPFACE_HOME: the age/gender weights are missing, as on a fresh machine."""
    home = tmp_path / "deepface-empty"
    home.mkdir()
    monkeypatch.setenv("DEEPFACE_HOME", str(home))
    return home


def start_pool(url: str, tmp_path: Path, extra: list[str] | None = None, grace_s: float = 10) -> WorkerPool:
    pool = WorkerPool(
        url,
        tmp_path / "logs",
        grace_s=grace_s,
        extra_args={
            "*": [*FAST_WORKERS, *(extra or []), "--storage", str(tmp_path / "storage")],
            "sink": ["--output", str(tmp_path / "output")],
        },
    )
    pool.start()
    return pool


def test_run_takes_sample_photos_through_every_stage_with_embedded_redis(tmp_path, no_weights):
    """`faces run data/` with no Redis URL: embedded server, four workers, one JSON per photo."""
    storage, output, state = tmp_path / "storage", tmp_path / "output", tmp_path / "state"
    done = faces_cli("run", str(DATA), "--state-dir", str(state), "--storage", str(storage), "--output", str(output))
    assert done.returncode == 0, done.stdout + done.stderr
    results = result_files(storage)
    photos = sorted(p.name for p in DATA.glob("*.jpg"))
    assert sorted(Path(r["image"]["path"]).name for r in results.values()) == photos
    schema = load_schema()
    for result in results.values():
        jsonschema.validate(result, schema)
        assert result["status"] == "ok"
        assert set(result["timings_ms"]) >= {"detect", "landmarks"}
    group = next(r for r in results.values() if r["image"]["path"].endswith("group.jpg"))
    assert len(group["faces"]) == 4
    astronaut = next(r for r in results.values() if r["image"]["path"].endswith("astronaut.jpg"))
    assert len(astronaut["faces"]) == 1  # her face; not the mission patch on her suit
    faces = [f for r in results.values() for f in r["faces"]]
    assert len(faces) == 5 and all(len(f["landmarks"]) == 68 for f in faces)
    # No DeepFace weights, no network: real ages and genders from the bundled model.
    for face in faces:
        assert isinstance(face["age"], float) and face["age_range"][0] <= face["age"] <= face["age_range"][1]
        assert face["gender"]["label"] in ("Woman", "Man") and 0.5 <= face["gender"]["confidence"] <= 1
    assert {r["models"]["agegender"] for r in results.values()} == {BUNDLED_NAME}
    assert all("agegender" not in r["notes"] for r in results.values())
    assert sorted(p.stem for p in output.glob("*.jpg")) == sorted(results)
    assert "3 images: 3 ok" in done.stdout
    assert "ages and genders: the bundled dlib networks (offline)" in done.stdout
    assert not (state / "redis.sock").exists(), "embedded redis-server left running"


def test_deepface_required_without_its_weights_leaves_ages_null_and_says_why(tmp_path, no_weights):
    storage = tmp_path / "storage"
    done = faces_cli(
        *run_args(DATA / "group.jpg", tmp_path / "state", storage, "--no-visualize", "--agegender", "deepface")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [group] = result_files(storage).values()
    assert all(f["age"] is None for f in group["faces"]) and group["models"]["agegender"] is None
    assert group["notes"]["agegender"]["status"] == "weights_missing"
    assert "faces models fetch" in group["notes"]["agegender"]["message"]
    assert "ages and genders: none" in done.stdout
    # Said at once, not only inside the JSON: the summary, and the worker's log when it starts.
    assert f"  warning: {group['notes']['agegender']['message']}" in done.stdout.splitlines()
    log_lines = [
        json.loads(line) for line in (tmp_path / "state" / "logs" / "agegender-0.log").read_text().splitlines()
    ]
    [warned] = [line for line in log_lines if line["event"] == "agegender.deepface_unavailable"]
    assert warned["level"] == "warning" and warned["status"] == "weights_missing"
    assert log_lines.index(warned) < [line["event"] for line in log_lines].index("worker.ready")


def test_a_bad_agegender_choice_is_refused_before_any_worker_starts(tmp_path):
    state = tmp_path / "state"
    done = faces_cli("run", str(DATA), "--state-dir", str(state), "--agegender", "insightface", timeout=60)
    assert done.returncode == exits.USAGE
    assert done.stderr.strip().splitlines() == [
        "error: Invalid value for '--agegender' (env var FACES_AGEGENDER): 'insightface' is not one of "
        "auto, deepface, dlib (see `faces run --help`)"
    ]
    assert not (state / "logs").exists(), "workers were started"


def test_a_bad_precision_setting_is_refused_before_any_worker_starts(tmp_path):
    state = tmp_path / "state"
    done = faces_cli(
        *run_args(DATA, state, tmp_path / "storage"),
        env={"FACES_AGEGENDER_PRECISION": "half"},
        timeout=60,
    )
    assert done.returncode == exits.USAGE
    assert "FACES_AGEGENDER_PRECISION='half'" in done.stderr and "Traceback" not in done.stderr
    assert not (state / "logs").exists(), "workers were started"


def kill_while_busy(pool: WorkerPool, client, stage: str, sig=signal.SIGKILL):
    """Signal the stage's first worker as soon as it holds entries; the worker."""
    victim = pool.by_stage(stage)[0]
    wait_until(
        lambda: consumer_pending(client, stage, victim.consumer) > 0,
        interval_s=0.005,
        what=f"{stage} worker holding entries",
    )
    victim.process.send_signal(sig)
    return victim


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(tmp_path, redis_url, redis_client, no_weights):
    photos = photo_variants(tmp_path / "in", 16)
    pool = start_pool(redis_url, tmp_path)
    try:
        jobs = [submit_file(redis_client, p) for p in photos]
        victim = kill_while_busy(pool, redis_client, "detect")
        victim.process.wait()
        wait_until(
            lambda: pool.supervise() or len(announced_job_ids(redis_client)) >= len(jobs),
            timeout_s=120,
            what="every image finished after the restart",
        )
        wait_until(lambda: total_pending(redis_client) == 0, what="nothing pending")
    finally:
        pool.stop()
    assert victim.restarts == 1
    assert sorted(announced_job_ids(redis_client)) == sorted(j.job_id for j in jobs)  # no duplicates
    assert sorted(result_files(tmp_path / "storage")) == sorted(j.image_id for j in jobs)
    assert deadletters.count(redis_client) == 0


def test_sibling_claims_the_entries_of_a_killed_worker(tmp_path, redis_url, redis_client, no_weights):
    photos = photo_variants(tmp_path / "in", 12)
    pool = start_pool(redis_url, tmp_path)
    pool.stopping = True  # no restarts: the sibling must take over
    try:
        jobs = [submit_file(redis_client, p) for p in photos]
        victim = kill_while_busy(pool, redis_client, "detect")
        victim.process.wait()
        held = consumer_pending(redis_client, "detect", victim.consumer)
        sibling = faces_cli_background(redis_url, tmp_path, "detect", "detect-sibling")
        wait_until(
            lambda: len(announced_job_ids(redis_client)) >= len(jobs),
            timeout_s=120,
            what="every image finished by the sibling",
        )
        sibling.send_signal(signal.SIGTERM)
        sibling.wait(30)
    finally:
        pool.stop()
    assert held > 0
    assert sorted(announced_job_ids(redis_client)) == sorted(j.job_id for j in jobs)
    assert total_pending(redis_client) == 0


def faces_cli_background(url: str, tmp_path: Path, stage: str, consumer: str):
    import subprocess
    import sys

    log = open(tmp_path / f"{consumer}.log", "wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faces",
            "worker",
            stage,
            "--redis-url",
            url,
            "--consumer",
            consumer,
            *FAST_WORKERS,
            "--storage",
            str(tmp_path / "storage"),
        ],
        stdout=log,
        stderr=log,
    )


def test_poison_entry_is_dead_lettered_after_three_deliveries_and_gets_an_error_result(
    tmp_path, redis_url, redis_client, no_weights
):
    data = (DATA / "astronaut.jpg").read_bytes()
    job = job_for(str(DATA / "astronaut.jpg"), data)
    job["faces"] = [{"box": {"x": 10}, "score": 1.0}]  # a box the landmark stage cannot use
    redis_client.set(names.blob_key(job["job_id"]), data)
    redis_client.sadd(names.INFLIGHT, job["job_id"])
    redis_client.xadd(names.DETECTED, {PAYLOAD_FIELD: events.encode(job)})
    good = submit_file(redis_client, DATA / "group.jpg")
    # Each redelivery waits out --claim-idle-ms: 1 s instead of FAST_WORKERS' 3 s saves 4 s of
    # waiting; a batch renews its claim every third of it, so no live batch is taken over.
    pool = start_pool(redis_url, tmp_path, ["--claim-idle-ms", "1000"])
    try:
        wait_until(lambda: len(announced_job_ids(redis_client)) == 2, timeout_s=90, what="two results")
    finally:
        pool.stop()
    letter = deadletters.list_all(redis_client)[0]
    assert (letter.stage, letter.image_id, letter.deliveries) == ("landmarks", job["image_id"], 3)
    results = result_files(tmp_path / "storage")
    assert results[job["image_id"]]["status"] == "error"
    assert results[job["image_id"]]["error"]["stage"] == "landmarks"
    assert results[good.image_id]["status"] == "ok"
    assert total_pending(redis_client) == 0
    assert redis_client.scard(names.INFLIGHT) == 0 and redis_client.get(names.blob_key(job["job_id"])) is None


def test_sigterm_to_a_busy_worker_leaves_nothing_pending(tmp_path, redis_url, redis_client, no_weights):
    """SIGTERM mid-batch: the worker finishes the batch in hand within its grace period, exits 0
    and leaves its group holding nothing. The grace is generous (30 s) so that a machine busy
    with other work does not turn a finished batch into exit 4 (a CI run on a loaded machine)."""
    photos = photo_variants(tmp_path / "in", 12)
    pool = start_pool(redis_url, tmp_path, grace_s=30)
    pool.stopping = True
    try:
        for p in photos:
            submit_file(redis_client, p)
        victim = kill_while_busy(pool, redis_client, "detect", signal.SIGTERM)
        started = time.monotonic()
        code = victim.process.wait(60)
        took = time.monotonic() - started
        assert code == 0
        assert took < 30, f"took {took:.1f} s, over the 30 s grace period"
        assert consumer_pending(redis_client, "detect", victim.consumer) == 0
        consumers = [c["name"].decode() for c in redis_client.xinfo_consumers(names.IMAGES, "detect")]
        assert victim.consumer not in consumers
    finally:
        pool.stop()
