"""A stage call that never returns must not hold its batch for ever (issue 22 item 7): past
--batch-limit-s its claims are no longer renewed, its worker is replaced, the other workers
take its entries, and an entry that hangs every time reaches the dead letters after the
delivery limit. Real redis-server; real worker processes whose stage hangs (tests/hang_worker.py)."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from pathlib import Path

import pytest
import redis

from faces.ops.supervise.pool import Worker, WorkerPool
from faces.streams import deadletters, names, reading
from faces.streams.consumer import StageConsumer
from faces.streams.groups import ensure_group
from tests.consumer_threads import FAST, forwarded, publish, start, stop
from tests.fixtures_redis import REDIS6, REDIS7
from tests.hang_worker import HangingStage
from tests.pipeline import REPO
from tests.stages import PickyStage
from tests.waiting import wait_until

NO_STAGES = {"detect": 0, "landmarks": 0, "agegender": 0, "embed": 0, "sink": 0}
OVER_LIMIT = '"batch.over_limit"'


def pending(client: redis.Redis) -> int:
    return int(client.xpending(names.IMAGES, "detect")["pending"])


def hanging_pool(url: str, tmp_path: Path, count: int, *options: str) -> WorkerPool:
    """A pool of `count` detect workers whose stage hangs on "hang" images, supervised as
    `faces run` supervises its workers."""
    pool = WorkerPool(url, tmp_path / "logs", grace_s=2, counts=NO_STAGES)
    for index in range(count):
        consumer = pool.consumer_name("detect", index)
        command = [
            sys.executable,
            "-m",
            "tests.hang_worker",
            "detect",
            "--consumer",
            consumer,
            "--grace-s",
            "2",
            *options,
        ]
        pool.workers.append(
            Worker(
                "detect",
                consumer,
                command,
                tmp_path / "logs" / f"detect-{index}.log",
                {"FACES_REDIS_URL": url, "PYTHONPATH": str(REPO)},
                f"detect-{index}",
            )
        )
    for worker in pool.workers:
        worker.start()
    return pool


def overruns(pool: WorkerPool) -> int:
    return sum(w.log_path.read_text().count(OVER_LIMIT) for w in pool.workers if w.log_path.exists())


def test_a_hung_stage_call_loses_its_batch_and_its_entry_is_dead_lettered(
    redis_url, redis_client, tmp_path, monkeypatch
):
    """Two detect workers; one batch holds an image whose stage call never returns. After the
    1 s limit the worker holding it exits (code 6) and is restarted, the good images of its
    batch are forwarded once each, and the hanging image, handed twice (the delivery limit),
    is dead-lettered: nothing stays pending and the pool never takes the exits for a crash
    loop. (Before, the renewal kept the batch alive for ever and the run never ended.)"""
    monkeypatch.setenv("FACES_BATCH_LIMIT_S", "1")  # the workers get the pool's environment
    # The hanging image first, good ones behind it: whichever worker takes them over is handed
    # the hanging one alone first, and the good ones must not be charged its attempts
    # (test_good_entries_held_behind_a_hanging_one_are_tried_before_the_delivery_limit).
    [hung] = publish(redis_client, 1, prefix="hang")
    good = publish(redis_client, 2, prefix="img")
    pool = hanging_pool(redis_url, tmp_path, 2, "--block-ms", "100", "--claim-idle-ms", "500", "--max-deliveries", "2")

    def settled() -> bool:
        pool.supervise()
        return deadletters.count(redis_client) == 1 and len(forwarded(redis_client)) == 2 and pending(redis_client) == 0

    try:
        # Generous: each overrun restarts a worker process (seconds on a loaded 2-core machine).
        wait_until(settled, timeout_s=240, what="the good images forwarded and the hung one dead-lettered")
        replaced = overruns(pool)
    finally:
        pool.stop()
    assert sorted(forwarded(redis_client)) == sorted(j["image_id"] for j in good)
    [letter] = deadletters.list_all(redis_client)
    assert (letter.image_id, letter.error_type, letter.deliveries) == (hung["image_id"], "DeliveryLimit", 2)
    assert "--batch-limit-s" in letter.message
    assert replaced == 2  # each delivery of the hanging image ran past the limit once


def test_a_batch_past_its_limit_is_no_longer_renewed_and_a_sibling_takes_it(redis_client):
    """In one process: the stuck consumer stops renewing its batch at the limit and says so
    (on_overrun); a live sibling claims and forwards every entry once; when the stuck call
    returns at last, its owner-checked commit adds no duplicate."""
    settings = dataclasses.replace(FAST, batch_limit_s=0.5)
    jobs = publish(redis_client, 3)
    gate = threading.Event()
    stuck_stage = PickyStage(gate=gate)
    said: list[str] = []
    stuck = StageConsumer(redis_client, stuck_stage, settings, "stuck", on_overrun=lambda: said.append("over"))
    stuck_thread = threading.Thread(target=stuck.run, daemon=True)
    stuck_thread.start()
    wait_until(lambda: len(stuck_stage.seen) == 3, what="the stuck batch in hand")
    sibling, sibling_thread = start(redis_client, PickyStage(), settings, name="sibling")
    try:
        wait_until(lambda: len(forwarded(redis_client)) == 3, timeout_s=20, what="the sibling forwarding the batch")
        assert said == ["over"]
    finally:
        gate.set()
        stop(sibling, sibling_thread)
        stop(stuck, stuck_thread)
    assert sorted(forwarded(redis_client)) == sorted(j["image_id"] for j in jobs)
    assert pending(redis_client) == 0


def test_a_long_batch_within_its_limit_keeps_the_heartbeat_fresh(redis_client):
    """A batch that takes long but stays under --batch-limit-s is not a stuck worker: its
    heartbeat keeps being renewed while the stage call runs (from the claim-renewal loop).
    Before (review), the heartbeat was renewed only between batches, so a batch between
    HEARTBEAT_STALE_S (120 s) and the 300 s limit made `faces health` fail and replay start
    extra workers for a stage that was working."""
    settings = dataclasses.replace(FAST, heartbeat_every_s=0.1)  # renewal every claim_idle_ms / 3
    publish(redis_client, 1)
    gate = threading.Event()
    stage = PickyStage(gate=gate)
    consumer, thread = start(redis_client, stage, settings, name="slow")
    try:
        wait_until(lambda: len(stage.seen) == 1, what="the batch in hand")
        field = f"{stage.route.name}:slow"
        beat_at = lambda: json.loads(redis_client.hget(names.HEARTBEATS, field) or "{}").get("at", 0.0)  # noqa: E731
        first = wait_until(beat_at, what="the first heartbeat")
        wait_until(
            lambda: beat_at() > first + 1.0, timeout_s=10, what="the heartbeat renewed while the stage call runs"
        )
        assert len(forwarded(redis_client)) == 0, "the batch is still in the stage call"
    finally:
        gate.set()
        stop(consumer, thread)


@pytest.mark.parametrize("redis_version", [REDIS6, REDIS7], indirect=True)
def test_good_entries_held_behind_a_hanging_one_are_tried_before_the_delivery_limit(redis_client):
    """The gap issue 22 left open: a worker that read the hanging image first and two good ones
    behind it in one batch died with them (each delivered once). A second consumer takes all
    three over, is handed the hanging one alone and hangs on it past the limit. A third then
    takes the three: the hanging one, handed twice (max_deliveries), is dead-lettered with its
    reason; each good one is handed for the second time only and forwarded once. Before, taking
    the three over counted a delivery of each at once, so the good ones reached the delivery
    limit behind the hanging one and were dead-lettered without ever being tried alone."""
    settings = dataclasses.replace(FAST, batch_limit_s=0.5, max_deliveries=2)
    [hung] = publish(redis_client, 1, prefix="hang")
    good = publish(redis_client, 2, prefix="img")
    ensure_group(redis_client, names.IMAGES, "detect")
    assert len(reading.read_new(redis_client, names.IMAGES, "detect", "died", 3, 1)) == 3  # the dead worker's batch
    release = threading.Event()
    said: list[str] = []
    stuck_stage, taker_stage = HangingStage(release=release), HangingStage(release=release)
    stuck = StageConsumer(redis_client, stuck_stage, settings, "stuck", on_overrun=lambda: said.append("over"))
    stuck_thread = threading.Thread(target=stuck.run, daemon=True)
    stuck_thread.start()
    taker, taker_thread = None, None
    try:
        wait_until(lambda: said == ["over"], timeout_s=30, what="the consumer that took the three to overrun")
        taker, taker_thread = start(redis_client, taker_stage, settings, name="taker")
        wait_until(lambda: pending(redis_client) == 0, timeout_s=30, what="every entry settled")
    finally:
        release.set()
        if taker is not None and taker_thread is not None:
            stop(taker, taker_thread)
        stop(stuck, stuck_thread)
    letters = deadletters.list_all(redis_client)
    assert [(x.image_id, x.error_type, x.deliveries) for x in letters] == [(hung["image_id"], "DeliveryLimit", 2)]
    assert "--batch-limit-s" in letters[0].message
    assert forwarded(redis_client) == [j["image_id"] for j in good]
    assert stuck_stage.seen == [(hung["image_id"], 2)]  # handed the hanging one alone, then hung
    assert taker_stage.seen == [(j["image_id"], 2) for j in good]  # each good one tried alone, once more
