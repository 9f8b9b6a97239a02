"""Chaos runs (`make chaos`, not in `make test`): workers and Redis killed while images flow.

Each run asserts sent == received: every image has exactly one JSON, nothing is pending, and
good images never reach the dead-letter stream.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from ops.workers import WorkerPool
from producer.submit import submit_file
from streams import deadletters, names
from streams.connection import connect
from streams.embedded import EmbeddedRedis
from tests.images import photo_variants
from tests.pipeline import announced_job_ids, result_files, total_pending
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

WORKER_ARGS = ["--block-ms", "200", "--claim-idle-ms", "3000", "--batch", "8"]


def pool_for(url, tmp_path, counts=None) -> WorkerPool:
    pool = WorkerPool(url, tmp_path / "logs", grace_s=10,
                      counts=counts or {"detect": 2, "landmarks": 1, "agegender": 1, "sink": 1},
                      extra_args={"*": [*WORKER_ARGS, "--storage", str(tmp_path / "storage")],
                                  "sink": ["--no-visualize"]})
    pool.start()
    return pool


def test_200_images_while_random_workers_are_killed(tmp_path, redis_url, redis_client, monkeypatch):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "no-weights"))
    photos = photo_variants(tmp_path / "in", 200, source="astronaut.jpg")
    pool = pool_for(redis_url, tmp_path)
    rng = random.Random(42)
    kills = 0
    try:
        jobs = [submit_file(redis_client, p) for p in photos]
        next_kill = time.monotonic() + 3
        deadline = time.monotonic() + 600
        while len(set(announced_job_ids(redis_client))) < len(jobs):
            pool.supervise()
            if time.monotonic() >= next_kill:
                victim = rng.choice([w for w in pool.workers if w.alive])
                victim.process.send_signal(signal.SIGKILL)
                kills += 1
                next_kill = time.monotonic() + rng.uniform(2, 4)
            assert time.monotonic() < deadline, "chaos run did not finish in 10 minutes"
            time.sleep(0.1)
        wait_until(lambda: pool.supervise() or total_pending(redis_client) == 0, timeout_s=60,
                   what="nothing pending")
    finally:
        pool.stop()
    print(f"killed {kills} workers")
    assert kills >= 3
    assert sorted(result_files(tmp_path / "storage")) == sorted({j.image_id for j in jobs})
    assert deadletters.count(redis_client) == 0
    assert sorted(set(announced_job_ids(redis_client))) == sorted(j.job_id for j in jobs)


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_redis_killed_mid_run_and_restarted_on_its_aof(tmp_path, monkeypatch, fsync):
    """With appendfsync always no acknowledged submission is lost; with everysec, what is lost
    is bounded (about a second of writes) and re-submitting the missing images recovers it."""
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "no-weights"))
    server = EmbeddedRedis(tmp_path / "redis", appendfsync=fsync)
    server.start()
    client = connect(server.url)
    photos = photo_variants(tmp_path / "in", 60, source="astronaut.jpg")
    pool = pool_for(server.url, tmp_path, counts={"detect": 1, "landmarks": 1, "agegender": 1, "sink": 1})
    try:
        sent = {}
        for i, path in enumerate(photos):
            if i == 30:
                server.kill()          # mid-run: workers are busy, half the photos submitted
                server.start()         # replays the AOF; workers and producer reconnect
            sent[path] = _submit_retrying(client, path)
        deadline = time.monotonic() + 300
        while True:
            pool.supervise()
            done = {f["image"]["path"] for f in result_files(tmp_path / "storage").values()}
            missing = [p for p in photos if str(p) not in done]
            if not missing:
                break
            if time.monotonic() > deadline - 240 and fsync == "everysec":
                lost_inflight = [p for p in missing if not _in_flight(client, sent[p])]
                for path in lost_inflight:   # recovery: re-submit what Redis lost
                    sent[path] = _submit_retrying(client, path)
            assert time.monotonic() < deadline, f"{len(missing)} images without a result"
            time.sleep(0.2)
    finally:
        pool.stop()
        server.stop()
    assert len(result_files(tmp_path / "storage")) == len(photos)


def _submit_retrying(client, path):
    for _ in range(100):
        try:
            return submit_file(client, path).job_id
        except Exception:  # noqa: BLE001 - Redis is restarting; the producer retries
            time.sleep(0.1)
    raise AssertionError(f"could not submit {path}")


def _in_flight(client, job_id: str) -> bool:
    return bool(client.sismember(names.INFLIGHT, job_id)) or job_id in announced_job_ids(client)


def test_backlog_of_5000_images_keeps_memory_bounded_and_releases_bytes(tmp_path, redis_url, redis_client, monkeypatch):
    """5,000 queued images cost their bytes once plus a small event each; once finished, the
    bytes are gone. Bound stated in the README: bytes + 2 KiB per queued image."""
    import cv2
    import numpy as np

    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "no-weights"))
    folder = tmp_path / "tiny"
    folder.mkdir()
    rng = np.random.default_rng(1)
    total_bytes = 0
    for i in range(5000):
        pixels = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
        path = folder / f"t{i:05d}.jpg"
        cv2.imwrite(str(path), pixels)
        total_bytes += path.stat().st_size
    baseline = int(redis_client.info("memory")["used_memory"])
    jobs = [submit_file(redis_client, p, high_water=0) for p in sorted(folder.iterdir())]
    queued = int(redis_client.info("memory")["used_memory"]) - baseline
    bound = total_bytes + 2048 * len(jobs)
    print(f"queued: {len(jobs)} images, {total_bytes} bytes of images, redis grew {queued} bytes, bound {bound}")
    assert queued < bound
    started = time.monotonic()
    pool = pool_for(redis_url, tmp_path, counts={"detect": 1, "landmarks": 1, "agegender": 1, "sink": 1})
    try:
        wait_until(lambda: pool.supervise() or redis_client.scard(names.INFLIGHT) == 0, timeout_s=900,
                   interval_s=1, what="backlog drained")
    finally:
        pool.stop()
    seconds = time.monotonic() - started
    print(f"drained 5000 images in {seconds:.0f} s ({5000 / seconds:.1f} images/s)")
    assert not list(redis_client.scan_iter(match="faces:blob:*", count=1000))
    assert len(set(announced_job_ids(redis_client))) == 5000
