"""The consumer runtime against a real redis-server, with small test stages (tests/stages.py)."""

from __future__ import annotations

import msgpack
import pytest
import redis

from faces.schemas import events
from faces.streams import deadletters, names, trimming
from faces.streams.consumer import StageConsumer
from faces.streams.reading import PAYLOAD_FIELD
from faces.streams.settings import RuntimeSettings, SettingsError
from tests.consumer_threads import FAST, forwarded, publish, start, stop
from tests.stages import PickyStage
from tests.waiting import wait_until


def output_ids(client: redis.Redis, stream: str = names.DETECTED) -> list[str]:
    return forwarded(client, stream)


def pending(client: redis.Redis, stream: str = names.IMAGES, group: str = "detect") -> int:
    return int(client.xpending(stream, group)["pending"])


def test_forwards_every_entry_once_in_batches_and_acks_them(redis_client):
    jobs = publish(redis_client, 10)
    stage = PickyStage()
    consumer, thread = start(redis_client, stage)
    wait_until(lambda: redis_client.xlen(names.DETECTED) == 10, what="10 forwarded entries")
    stop(consumer, thread)
    assert sorted(output_ids(redis_client)) == sorted(j["image_id"] for j in jobs)
    assert pending(redis_client) == 0
    assert max(stage.batches) == 4  # read count = batch size
    assert all(attempt == 1 for _, attempt in stage.seen)


def test_poison_entry_goes_to_dead_letters_after_max_deliveries_and_sink_gets_error(redis_client):
    jobs = publish(redis_client, 3)
    poison = jobs[1]["image_id"]
    stage = PickyStage(poison_image=poison)
    consumer, thread = start(redis_client, stage)
    wait_until(lambda: deadletters.count(redis_client) == 1, what="a dead letter")
    wait_until(lambda: pending(redis_client) == 0, what="nothing pending")
    stop(consumer, thread)
    letter = deadletters.list_all(redis_client)[0]
    assert letter.image_id == poison and letter.stage == "detect"
    assert letter.error_type == "Poison" and "cannot handle" in letter.message
    assert letter.deliveries == FAST.max_deliveries  # the times the stage was handed it
    assert [a for i, a in stage.seen if i == poison] == [1, 1, 2, 3]  # batch try, alone, 2 retries
    # The good siblings went on; the poison one reaches the sink as an error job.
    assert sorted(output_ids(redis_client)) == sorted(j["image_id"] for j in jobs if j["image_id"] != poison)
    sink_jobs = [events.decode(f[PAYLOAD_FIELD]) for _, f in redis_client.xrange(names.SINK_INPUT)]
    assert [(j["image_id"], j["error"]["stage"], j["error"]["type"]) for j in sink_jobs] == [
        (poison, "detect", "Poison")
    ]


def test_rejected_entry_is_dead_lettered_at_once(redis_client):
    jobs = publish(redis_client, 2)
    stage = PickyStage(reject_image=jobs[0]["image_id"])
    consumer, thread = start(redis_client, stage)
    wait_until(lambda: deadletters.count(redis_client) == 1, what="a dead letter")
    wait_until(lambda: redis_client.xlen(names.DETECTED) == 1, what="the good entry forwarded")
    stop(consumer, thread)
    assert deadletters.list_all(redis_client)[0].deliveries == 1


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"\x81\xa6schema\xc1", "not a msgpack event"),
        (
            msgpack.packb({"schema": "faces.job", "version": 999, "job_id": "j", "image_id": "i"}),
            "unsupported faces.job version 999",
        ),
        (msgpack.packb([1, 2, 3]), "expected a map"),
    ],
)
def test_garbage_and_unknown_versions_are_dead_lettered_with_reason(redis_client, payload, reason):
    redis_client.xadd(names.IMAGES, {PAYLOAD_FIELD: payload})
    publish(redis_client, 1)
    consumer, thread = start(redis_client, PickyStage())
    wait_until(lambda: deadletters.count(redis_client) == 1, what="a dead letter")
    wait_until(lambda: redis_client.xlen(names.DETECTED) == 1, what="the good entry forwarded")
    stop(consumer, thread)
    letter = deadletters.list_all(redis_client)[0]
    assert reason in letter.message and letter.error_type == "EventError"
    assert letter.payload == payload
    assert pending(redis_client) == 0


def test_entries_of_a_dead_consumer_are_claimed_by_a_live_one(redis_client):
    jobs = publish(redis_client, 5)
    from faces.streams.groups import ensure_group

    ensure_group(redis_client, names.IMAGES, "detect")
    # "ghost" reads the entries and dies without acknowledging them.
    redis_client.xreadgroup("detect", "ghost", {names.IMAGES: ">"}, count=5)
    assert pending(redis_client) == 5
    stage = PickyStage()
    consumer, thread = start(redis_client, stage, name="survivor")
    wait_until(lambda: redis_client.xlen(names.DETECTED) == 5, what="claimed entries forwarded")
    stop(consumer, thread)
    assert sorted(output_ids(redis_client)) == sorted(j["image_id"] for j in jobs)
    assert pending(redis_client) == 0
    assert all(attempt == 2 for _, attempt in stage.seen)  # claimed: a second delivery


def test_own_pending_entries_are_taken_back_first_on_restart(redis_client):
    publish(redis_client, 3)
    from faces.streams.groups import ensure_group

    ensure_group(redis_client, names.IMAGES, "detect")
    redis_client.xreadgroup("detect", "c1", {names.IMAGES: ">"}, count=3)
    settings = RuntimeSettings(batch=4, block_ms=50, claim_idle_ms=60_000, retry_backoff_s=0.05)
    stage = PickyStage()
    consumer, thread = start(redis_client, stage, settings, name="c1")  # same name, long claim idle
    wait_until(lambda: redis_client.xlen(names.DETECTED) == 3, what="own pending entries redone")
    stop(consumer, thread)
    assert pending(redis_client) == 0


def test_slow_batch_renews_its_claim_so_a_sibling_does_not_steal_it(redis_client):
    publish(redis_client, 2)
    slow = PickyStage(delay_s=1.5)  # several times claim_idle_ms
    sibling = PickyStage()
    c1, t1 = start(redis_client, slow, FAST, name="slow")
    wait_until(lambda: slow.seen, what="slow stage busy")
    c2, t2 = start(redis_client, sibling, FAST, name="sibling")
    wait_until(lambda: redis_client.xlen(names.DETECTED) == 2, what="both forwarded")
    stop(c1, t1)
    stop(c2, t2)
    assert sibling.seen == []
    assert redis_client.xlen(names.DETECTED) == 2  # no duplicates


def test_stop_finishes_the_batch_in_hand_and_removes_the_idle_consumer(redis_client):
    publish(redis_client, 3)
    stage = PickyStage(delay_s=0.5)
    consumer, thread = start(redis_client, stage)
    wait_until(lambda: stage.seen, what="batch in hand")
    stop(consumer, thread)
    assert redis_client.xlen(names.DETECTED) == 3
    assert pending(redis_client) == 0
    assert redis_client.xinfo_consumers(names.IMAGES, "detect") == []


def test_burst_mode_returns_when_drained(redis_client):
    publish(redis_client, 6)
    consumer = StageConsumer(redis_client, PickyStage(), RuntimeSettings(batch=4, block_ms=50, burst=True), "b")
    consumer.run()
    assert redis_client.xlen(names.DETECTED) == 6 and consumer.processed == 6


def test_consumer_survives_a_redis_restart_with_its_group(redis_server, redis_client):
    publish(redis_client, 2, prefix="before")
    stage = PickyStage()
    consumer, thread = start(redis_client, stage)
    wait_until(lambda: redis_client.xlen(names.DETECTED) == 2, what="first entries")
    redis_server.kill()
    redis_server.start()  # same AOF: streams and group come back
    publish(redis_client, 2, prefix="after")
    wait_until(lambda: redis_client.xlen(names.DETECTED) == 4, timeout_s=40, what="entries after restart")
    stop(consumer, thread)
    assert [i.split("-")[0] for i in output_ids(redis_client)] == ["before0", "before1", "after0", "after1"]


def test_safe_trim_keeps_everything_a_group_still_needs(redis_client):
    publish(redis_client, 6)
    from faces.streams.groups import ensure_group

    ensure_group(redis_client, names.IMAGES, "detect")
    read = redis_client.xreadgroup("detect", "c", {names.IMAGES: ">"}, count=4)[0][1]
    ids = [i.decode() for i, _ in read]
    redis_client.xack(names.IMAGES, "detect", ids[0], ids[1], ids[3])  # ids[2] still pending
    removed = trimming.trim_safely(redis_client, names.IMAGES)
    remaining = [i.decode() for i, _ in redis_client.xrange(names.IMAGES)]
    assert removed == 2 and remaining[0] == ids[2] and len(remaining) == 4
    redis_client.xack(names.IMAGES, "detect", ids[2])
    trimming.trim_safely(redis_client, names.IMAGES)
    assert redis_client.xlen(names.IMAGES) == 2  # the two never read stay
    # With retention, acknowledged history is kept for replay.
    redis_client.xreadgroup("detect", "c", {names.IMAGES: ">"}, count=10)
    redis_client.xack(names.IMAGES, "detect", *[i for i, _ in redis_client.xrange(names.IMAGES)])
    assert trimming.trim_safely(redis_client, names.IMAGES, keep_since_s=3600) == 0
    assert trimming.trim_safely(redis_client, names.IMAGES) == 2


def test_settings_refuse_claiming_below_the_block_time():
    with pytest.raises(SettingsError, match="claim_idle_ms"):
        RuntimeSettings(block_ms=5000, claim_idle_ms=1000)
