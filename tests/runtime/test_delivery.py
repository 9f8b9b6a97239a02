"""Delivery guarantees under contention, restarts, upgrades and operator mistakes (issue 10).

Each test reproduces one way a promise used to break, against a real redis-server (6.2 and
7.x: see tests/fixtures_redis.py), and counts exactly: every id once, every good result `ok`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import threading
from collections.abc import Callable, Sequence

import msgpack
import pytest
import redis

from faces.consumers.sink import SinkStage
from faces.producer.files import job_for
from faces.producer.redrive import retry_letter
from faces.schemas import events
from faces.streams import deadletters, names, publishing, trimming
from faces.streams.consumer import StageConsumer
from faces.streams.groups import ensure_group
from faces.streams.outcomes import Delivery, Outcome
from faces.streams.reading import PAYLOAD_FIELD
from faces.streams.settings import RuntimeSettings, SettingsError
from tests.consumer_threads import FAST, forwarded, publish, start, stop
from tests.stages import PickyStage
from tests.waiting import wait_until

BURST = RuntimeSettings(batch=8, block_ms=50, burst=True)


def pending_of(client: redis.Redis, consumer: str, stream: str = names.IMAGES, group: str = "detect") -> list[str]:
    rows = client.xpending_range(stream, group, min="-", max="+", count=100, consumername=consumer)
    return [r["message_id"].decode() for r in rows]


def entry_ids(client: redis.Redis, stream: str = names.IMAGES) -> list[str]:
    return [i.decode() for i, _ in client.xrange(stream)]


def run_sink(client: redis.Redis, storage) -> SinkStage:
    sink = SinkStage(storage=storage)
    StageConsumer(client, sink, BURST, "sink-test").run()
    return sink


def sink_job(image_id_source: str, *, submitted_at: float, error: bool = False, job_id: str | None = None) -> dict:
    job = job_for(f"/photos/{image_id_source}.jpg", image_id_source.encode())
    if job_id is not None:
        job = events.as_new_job(job, job_id=job_id, submitted_at=submitted_at)
    job["submitted_at"] = submitted_at
    if error:
        job = events.with_error(job, "detect", "Broken", "could not be analysed")
    else:
        job["faces"] = [{"box": [1, 2, 3, 4], "score": 0.9}]
    return job


def announced(client: redis.Redis) -> list[tuple[str, str]]:
    return [(f[b"job_id"].decode(), f[b"status"].decode()) for _, f in client.xrange(names.RESULTS)]


# -- 1. a consumer acts only on entries it still owns --------------------------------------------
def test_a_batch_whose_entries_were_taken_over_forwards_and_acknowledges_nothing(redis_client):
    """While a slow batch runs, a sibling takes its entries over (as after a failed renewal):
    the slow consumer's late commit must not forward duplicates nor acknowledge the sibling's
    entries, and its renewals must not take them back."""
    jobs = publish(redis_client, 2)
    slow = PickyStage(delay_s=1.0)
    # A long claim_idle_ms: the thief counts as alive, so c1 has no business claiming back.
    consumer, thread = start(redis_client, slow, RuntimeSettings(batch=4, block_ms=50, claim_idle_ms=60_000))
    wait_until(lambda: len(slow.seen) == 2, what="slow batch in hand")
    ids = pending_of(redis_client, "c1")
    redis_client.xclaim(names.IMAGES, "detect", "thief", min_idle_time=0, message_ids=ids)
    wait_until(lambda: consumer.processed == 2, what="the slow batch's commit")
    stop(consumer, thread)
    assert forwarded(redis_client) == []
    assert pending_of(redis_client, "thief") == ids and pending_of(redis_client, "c1") == []
    assert [j["image_id"] for j in jobs] == [i for i, _ in slow.seen]


def test_a_retry_does_not_take_back_an_entry_a_sibling_has_claimed(redis_client):
    """An entry waiting for its retry that a sibling took over is the sibling's: the retry must
    not XCLAIM it back (it used to, with min-idle 0, and both processed it)."""
    settings = RuntimeSettings(batch=4, block_ms=50, claim_idle_ms=60_000, retry_backoff_s=1.0)
    [job] = publish(redis_client, 1)
    stage = PickyStage(flaky_image=job["image_id"])
    consumer, thread = start(redis_client, stage, settings)
    wait_until(lambda: consumer.retries, what="first attempt failed, retry scheduled")
    [entry] = pending_of(redis_client, "c1")
    redis_client.xclaim(names.IMAGES, "detect", "sibling", min_idle_time=0, message_ids=[entry])
    wait_until(lambda: not consumer.retries, timeout_s=5, what="the retry attempted")
    stop(consumer, thread)
    assert stage.seen == [(job["image_id"], 1)]
    assert forwarded(redis_client) == []
    assert pending_of(redis_client, "sibling") == [entry]


def test_entries_waiting_for_a_retry_keep_their_claim_while_a_slow_batch_runs(redis_client):
    """A failed entry waits for its retry while its consumer works through a batch longer than
    claim_idle_ms; a live sibling must not claim it meanwhile (the waiting entry is renewed)."""
    settings = RuntimeSettings(
        batch=1, block_ms=50, claim_idle_ms=400, claim_every_s=0.1, retry_backoff_s=3.0, grace_s=5
    )
    [flaky] = publish(redis_client, 1, prefix="flaky")
    busy = PickyStage(flaky_image=flaky["image_id"], delay_s=1.5, slow_image="slow0")
    consumer, thread = start(redis_client, busy, settings)
    wait_until(lambda: consumer.retries, what="the first attempt failed, a retry waiting")
    [slow] = publish(redis_client, 1, prefix="slow")
    busy.slow_image = slow["image_id"]
    wait_until(lambda: (slow["image_id"], 1) in busy.seen, what="the slow batch under way")
    sibling = PickyStage()
    c2, t2 = start(redis_client, sibling, settings, name="sibling")
    wait_until(
        lambda: not consumer.retries and flaky["image_id"] in forwarded(redis_client),
        timeout_s=20,
        what="the retry done",
    )
    stop(c2, t2)
    stop(consumer, thread)
    assert sorted(forwarded(redis_client)) == sorted([flaky["image_id"], slow["image_id"]])
    assert sibling.seen == []


# -- 14 and 1. results: ok never replaced by an error of its job; newer wins ------------------------
def test_an_error_result_never_replaces_the_ok_result_of_the_same_job(redis_client, tmp_path):
    ok = sink_job("face", submitted_at=1000.0)
    publishing.publish_image(redis_client, ok, b"bytes", stream=names.SINK_INPUT)
    run_sink(redis_client, tmp_path)
    late_error = events.with_error(ok, "landmarks", "ImageMissing", "bytes gone")  # a late duplicate
    redis_client.xadd(names.SINK_INPUT, {PAYLOAD_FIELD: events.encode(late_error)})
    run_sink(redis_client, tmp_path)
    stored = json.loads(redis_client.get(names.result_key(ok["image_id"])))
    on_disk = json.loads((tmp_path / f"{ok['image_id']}.json").read_text())
    assert (stored["status"], on_disk["status"]) == ("ok", "ok")
    assert announced(redis_client) == [(ok["job_id"], "ok")]  # the duplicate is not announced


def test_an_older_submission_never_replaces_a_newer_result(redis_client, tmp_path):
    """A replay (newer) finishes before the original job (older): the replay's result stays,
    and the original's is announced superseded, not ok (issue 22 item 11)."""
    original = sink_job("face", submitted_at=1000.0, job_id="a" * 32)
    replayed = sink_job("face", submitted_at=1000.0, job_id="b" * 32)
    replayed["faces"] = [{"box": [1, 2, 3, 4], "score": 0.9}, {"box": [5, 6, 7, 8], "score": 0.8}]
    # Publishing stamps Redis's clock (the given times are ignored): the original is submitted
    # first and is still at an earlier stage when the replay reaches the sink ...
    publishing.publish_image(redis_client, original, b"bytes", stream=names.LANDMARKED)
    publishing.publish_image(redis_client, replayed, b"bytes", stream=names.SINK_INPUT)
    assert original["submitted_at"] <= replayed["submitted_at"]
    run_sink(redis_client, tmp_path)
    # ... and reaches it last, forwarded as the agegender stage would.
    redis_client.xadd(names.SINK_INPUT, {PAYLOAD_FIELD: events.encode(original)})
    run_sink(redis_client, tmp_path)
    stored = json.loads(redis_client.get(names.result_key(replayed["image_id"])))
    on_disk = json.loads((tmp_path / f"{replayed['image_id']}.json").read_text())
    assert stored["job_id"] == on_disk["job_id"] == replayed["job_id"]
    assert len(stored["faces"]) == 2
    assert announced(redis_client) == [(replayed["job_id"], "ok"), (original["job_id"], "superseded")]
    assert redis_client.scard(names.INFLIGHT) == 0


def test_a_replay_is_a_newer_submission_than_the_original(redis_client, tmp_path):
    from faces.producer import replay

    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"pixels")
    original = job_for(str(photo), b"pixels")
    publishing.publish_image(redis_client, original, b"pixels")
    [job] = replay.plan(redis_client).jobs
    assert job["submitted_at"] > original["submitted_at"] and job["job_id"] != original["job_id"]


def test_a_dead_letter_retry_before_the_sink_wrote_the_error_keeps_its_bytes(redis_client, tmp_path):
    """Retrying a dead letter while its error event still waits for the sink: the sink's release
    of the failed job's bytes must not take the retry's bytes with it."""
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"pixels")
    job = job_for(str(photo), b"pixels")
    publishing.publish_image(redis_client, job, b"pixels")
    refusing = PickyStage(reject_image=job["image_id"], needs_image=True)
    StageConsumer(redis_client, refusing, BURST, "d1").run()
    [letter] = deadletters.list_all(redis_client)
    retry_letter(redis_client, letter)  # before the sink handled the error event
    run_sink(redis_client, tmp_path / "storage")  # writes the error result, releases the old job
    accepting = PickyStage(needs_image=True)
    StageConsumer(redis_client, accepting, BURST, "d2").run()
    assert forwarded(redis_client) == [job["image_id"]]
    assert deadletters.count(redis_client) == 0


# -- 2. a lost group stops the worker ---------------------------------------------------------------
def test_a_lost_group_stops_the_worker_instead_of_reprocessing_history(redis_client):
    from faces.streams.errors import GroupLost

    publish(redis_client, 3, prefix="old")
    StageConsumer(redis_client, PickyStage(), BURST, "c1").run()
    assert len(forwarded(redis_client)) == 3
    redis_client.xgroup_destroy(names.IMAGES, "detect")
    publish(redis_client, 1, prefix="new")
    with pytest.raises(GroupLost, match="faces recreate-group detect"):
        StageConsumer(redis_client, PickyStage(), BURST, "c1").run()
    assert len(forwarded(redis_client)) == 3  # nothing of the history processed again


def test_a_lost_group_is_noticed_by_a_running_worker(redis_client):
    from faces.streams.errors import GroupLost

    publish(redis_client, 2, prefix="old")
    errors: list[BaseException] = []
    consumer = StageConsumer(redis_client, PickyStage(), FAST, "c1")

    def run() -> None:
        try:
            consumer.run()
        except GroupLost as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: len(forwarded(redis_client)) == 2, what="history processed")
    redis_client.xgroup_destroy(names.IMAGES, "detect")
    thread.join(10)
    assert not thread.is_alive() and len(errors) == 1
    assert len(forwarded(redis_client)) == 2


def test_entries_published_before_the_first_worker_are_processed(redis_client):
    """A new pipeline (no group ever made) starts its group at the start of the stream."""
    jobs = publish(redis_client, 3)
    StageConsumer(redis_client, PickyStage(), BURST, "c1").run()
    assert forwarded(redis_client) == [j["image_id"] for j in jobs]


def test_recreate_group_starts_at_the_end_of_the_stream(redis_client):
    from faces.streams.groups import recreate_group

    publish(redis_client, 2, prefix="old")
    StageConsumer(redis_client, PickyStage(), BURST, "c1").run()
    redis_client.hset(names.held_key(names.IMAGES), "1-0", b"a record of the lost group")
    redis_client.xgroup_destroy(names.IMAGES, "detect")
    assert recreate_group(redis_client, names.IMAGES, "detect")
    assert not redis_client.exists(names.held_key(names.IMAGES)), "the lost group's held records went with it"
    [new] = publish(redis_client, 1, prefix="new")
    StageConsumer(redis_client, PickyStage(), BURST, "c1").run()
    assert forwarded(redis_client)[2:] == [new["image_id"]]


# -- 3. undecodable events ------------------------------------------------------------------------
def publish_as_is(client: redis.Redis, job: dict, data: bytes, payload: bytes, *streams: str) -> None:
    """Hold `job`'s slot and bytes as publishing does, with `payload` (an event another release
    wrote) added as it is to each of `streams`."""
    pipe = client.pipeline(transaction=True)
    pipe.set(names.blob_key(job["job_id"]), data)
    pipe.sadd(names.INFLIGHT, job["job_id"])
    for stream in streams:
        pipe.xadd(stream, {PAYLOAD_FIELD: payload})
    pipe.execute()


def test_an_event_of_a_newer_release_releases_its_bytes_and_gets_an_error_result(redis_client, tmp_path):
    """A rolling upgrade: an event version this release cannot read still names its job and
    image. Its in-flight slot and bytes are released and its image gets an error result."""
    job = job_for("/photos/new.jpg", b"new-bytes")
    newer = {**job, "version": 999}
    publish_as_is(redis_client, job, b"new-bytes", msgpack.packb(newer, use_bin_type=True), names.IMAGES)
    StageConsumer(redis_client, PickyStage(), BURST, "d").run()
    run_sink(redis_client, tmp_path)
    [letter] = deadletters.list_all(redis_client)
    assert (letter.error_type, letter.job_id) == ("EventError", job["job_id"])
    result = json.loads((tmp_path / f"{job['image_id']}.json").read_text())
    assert result["status"] == "error" and "unsupported faces.job version 999" in result["error"]["message"]
    assert redis_client.scard(names.INFLIGHT) == 0
    assert redis_client.exists(names.blob_key(job["job_id"])) == 0
    assert announced(redis_client) == [(job["job_id"], "error")]


def test_an_event_of_the_previous_release_naming_its_bytes_key_still_goes_through(redis_client, tmp_path):
    """A rolling upgrade the other way: the previous release wrote the key of the image bytes
    into the event (image.blob). Such an entry, already in a stream, is still processed: its
    bytes are found under the key derived from the job id, what is forwarded no longer names a
    key, and the sink finishes it and releases the bytes."""
    job = job_for("/photos/old.jpg", b"old-bytes")
    previous = {**job, "image": {**job["image"], "blob": names.blob_key(job["job_id"])}}
    payload = msgpack.packb(previous, use_bin_type=True)
    assert events.decode(payload) == job
    publish_as_is(redis_client, job, b"old-bytes", payload, names.IMAGES, names.SINK_INPUT)
    StageConsumer(redis_client, PickyStage(needs_image=True), BURST, "d").run()
    [(_, fields)] = redis_client.xrange(names.DETECTED)
    assert msgpack.unpackb(fields[PAYLOAD_FIELD], raw=False)["image"] == job["image"]
    run_sink(redis_client, tmp_path)
    assert json.loads((tmp_path / f"{job['image_id']}.json").read_text())["status"] == "ok"
    assert announced(redis_client) == [(job["job_id"], "ok")] and deadletters.count(redis_client) == 0
    assert redis_client.exists(names.blob_key(job["job_id"])) == 0 and redis_client.scard(names.INFLIGHT) == 0


def test_an_undecodable_event_at_the_sink_still_gets_an_error_result(redis_client, tmp_path):
    job = job_for("/photos/late.jpg", b"late")
    broken = {**job, "faces": "not a list"}
    redis_client.sadd(names.INFLIGHT, job["job_id"])
    redis_client.xadd(names.SINK_INPUT, {PAYLOAD_FIELD: msgpack.packb(broken, use_bin_type=True)})
    run_sink(redis_client, tmp_path)
    result = json.loads((tmp_path / f"{job['image_id']}.json").read_text())
    assert result["status"] == "error" and result["error"]["type"] == "EventError"
    assert redis_client.scard(names.INFLIGHT) == 0 and deadletters.count(redis_client) == 1


def test_garbage_without_ids_is_dead_lettered_with_nothing_else_written(redis_client):
    redis_client.xadd(names.IMAGES, {PAYLOAD_FIELD: b"\x00garbage"})
    StageConsumer(redis_client, PickyStage(), BURST, "d").run()
    assert deadletters.count(redis_client) == 1 and redis_client.xlen(names.SINK_INPUT) == 0


# -- 4. entries deleted while pending ---------------------------------------------------------------
def test_an_entry_deleted_while_a_dead_consumer_held_it_is_acknowledged_and_dead_lettered(redis_client):
    jobs = publish(redis_client, 3)
    ensure_group(redis_client, names.IMAGES, "detect")
    redis_client.xreadgroup("detect", "ghost", {names.IMAGES: ">"}, count=3)
    gone = entry_ids(redis_client)[1]
    redis_client.xdel(names.IMAGES, gone)
    consumer, thread = start(redis_client, PickyStage(), name="survivor")
    wait_until(lambda: deadletters.count(redis_client) == 1, what="a dead letter for the deleted entry")
    wait_until(lambda: int(redis_client.xpending(names.IMAGES, "detect")["pending"]) == 0, what="nothing pending")
    stop(consumer, thread)
    letter = deadletters.list_all(redis_client)[0]
    assert (letter.entry_id, letter.error_type) == (gone, "EntryDeleted")
    assert forwarded(redis_client) == [jobs[0]["image_id"], jobs[2]["image_id"]]


def test_an_own_pending_entry_deleted_meanwhile_is_acknowledged_on_restart(redis_client):
    publish(redis_client, 2)
    ensure_group(redis_client, names.IMAGES, "detect")
    redis_client.xreadgroup("detect", "c1", {names.IMAGES: ">"}, count=2)
    gone = entry_ids(redis_client)[0]
    redis_client.xdel(names.IMAGES, gone)
    StageConsumer(redis_client, PickyStage(), BURST, "c1").run()
    assert int(redis_client.xpending(names.IMAGES, "detect")["pending"]) == 0
    assert [letter.entry_id for letter in deadletters.list_all(redis_client)] == [gone]


class WorkerDied(BaseException):
    """A worker dying mid-batch, as under SIGKILL: nothing of its batch is committed."""


class DyingStage(PickyStage):
    """Takes its batch and dies with it (WorkerDied), leaving the entries pending."""

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        raise WorkerDied()


def test_an_entry_deleted_while_pending_still_gets_an_error_result_and_releases_its_job(redis_client, tmp_path):
    """Issue 22 item 12: a worker died holding two entries; one of them is deleted from the
    stream. On its restart the deleted entry's job, known from the record kept when the entry
    was taken, is dead-lettered with its job id and gets an error result, which frees its
    in-flight slot and bytes (before, the letter had no job id and both were held for ever)."""
    gone_job, kept_job = publish(redis_client, 2)
    with pytest.raises(WorkerDied):
        StageConsumer(redis_client, DyingStage(needs_image=True), BURST, "c1").run()
    gone = entry_ids(redis_client)[0]
    redis_client.xdel(names.IMAGES, gone)
    StageConsumer(redis_client, PickyStage(needs_image=True), BURST, "c1").run()
    run_sink(redis_client, tmp_path)
    [letter] = deadletters.list_all(redis_client)
    assert (letter.entry_id, letter.error_type) == (gone, "EntryDeleted")
    assert (letter.job_id, letter.image_id) == (gone_job["job_id"], gone_job["image_id"])
    result = json.loads(redis_client.get(names.result_key(gone_job["image_id"])))
    assert (result["status"], result["error"]["type"]) == ("error", "EntryDeleted")
    assert announced(redis_client) == [(gone_job["job_id"], "error")]
    assert forwarded(redis_client) == [kept_job["image_id"]]
    assert redis_client.smembers(names.INFLIGHT) == {kept_job["job_id"].encode()}  # still on its way
    assert redis_client.exists(names.blob_key(gone_job["job_id"])) == 0
    assert redis_client.exists(names.held_key(names.IMAGES)) == 0  # every record left with its ack


# -- 5. chores survive a group draining between two commands, and failures ---------------------------
class StaleGroupView(redis.Redis):
    """A real client whose XINFO GROUPS answers with an earlier snapshot: what a trim or a status
    query sees when the group drains between its two commands."""

    snapshot: list = []

    def xinfo_groups(self, name):
        return self.snapshot if name == names.IMAGES else super().xinfo_groups(name)


def test_trim_and_status_survive_a_group_that_drained_between_two_commands(redis_server, redis_client):
    from faces.streams.status import pipeline_status

    publish(redis_client, 2)
    ensure_group(redis_client, names.IMAGES, "detect")
    ids = [i for i, _ in redis_client.xreadgroup("detect", "c", {names.IMAGES: ">"}, count=2)[0][1]]
    stale = StaleGroupView.from_url(redis_server.url)
    stale.snapshot = redis_client.xinfo_groups(names.IMAGES)  # says 2 pending
    redis_client.xack(names.IMAGES, "detect", *ids)
    assert trimming.trim_safely(stale, names.IMAGES) == 2
    status = pipeline_status(stale)
    assert status["streams"][0]["groups"][0]["oldest_pending_age_s"] is None


def test_a_failing_chore_does_not_stop_the_worker(redis_server, redis_client):
    """The worker's Redis user may not trim (NOPERM): trimming fails, and entries still flow."""
    redis_client.acl_setuser("notrim", enabled=True, passwords=["+pw"], keys=["faces:*"], commands=["+@all", "-xtrim"])
    limited = redis.Redis(unix_socket_path=str(redis_server.socket), username="notrim", password="pw")
    jobs = publish(redis_client, 2)
    consumer, thread = start(limited, PickyStage())
    wait_until(lambda: len(forwarded(redis_client)) == 2, what="both forwarded")
    wait_until(lambda: consumer._next_trim_at > 0, what="a trim attempted")
    publish(redis_client, 1, prefix="later")
    wait_until(lambda: len(forwarded(redis_client)) == 3, what="still consuming after a failed trim")
    stop(consumer, thread)
    assert thread.is_alive() is False and forwarded(redis_client)[:2] == [j["image_id"] for j in jobs]


# -- 11 and 12. settings and bounded memory ---------------------------------------------------------
def test_block_ms_is_checked_against_the_socket_timeout():
    with pytest.raises(SettingsError, match="socket timeout"):
        RuntimeSettings(block_ms=30_000, claim_idle_ms=120_000)
    RuntimeSettings(block_ms=20_000, claim_idle_ms=120_000)


def test_a_worker_waits_out_out_of_memory_and_goes_on(redis_client):
    """Under noeviction a full Redis answers OOM: the worker backs off instead of dying."""
    publish(redis_client, 2)
    used = int(redis_client.info("memory")["used_memory"])
    redis_client.config_set("maxmemory", str(used // 2))  # full: every write is refused
    consumer, thread = start(redis_client, PickyStage())
    wait_until(lambda: oom_replies(redis_client) >= 2, what="the worker refused twice, alive")
    assert thread.is_alive() and forwarded(redis_client) == []
    redis_client.config_set("maxmemory", "0")
    wait_until(lambda: len(forwarded(redis_client)) == 2, timeout_s=20, what="forwarded after OOM")
    stop(consumer, thread)


def oom_replies(client: redis.Redis) -> int:
    stats = client.info("errorstats").get("errorstat_OOM", {})
    return int(stats.get("count", 0)) if isinstance(stats, dict) else 0


def test_results_in_redis_expire_after_the_result_ttl(redis_client, tmp_path):
    job = sink_job("face", submitted_at=1000.0)
    publishing.publish_image(redis_client, job, b"bytes", stream=names.SINK_INPUT)
    StageConsumer(
        redis_client, SinkStage(storage=tmp_path), RuntimeSettings(block_ms=50, burst=True, result_ttl_s=120), "s"
    ).run()
    ttl = redis_client.ttl(names.result_key(job["image_id"]))
    assert 0 < ttl <= 120


def test_dead_letters_are_capped_in_number_and_payload_size(redis_client, monkeypatch):
    monkeypatch.setattr(names, "DEAD_LETTERS_MAXLEN", 5)
    for i in range(8):
        redis_client.xadd(names.IMAGES, {PAYLOAD_FIELD: b"\x00garbage-%d" % i})
    big = b"\x00" + b"x" * (deadletters.MAX_KEPT_PAYLOAD_BYTES + 10)
    redis_client.xadd(names.IMAGES, {PAYLOAD_FIELD: big})
    StageConsumer(redis_client, PickyStage(), BURST, "d").run()
    letters = deadletters.list_all(redis_client)
    assert len(letters) == 5
    assert letters[-1].payload is None and letters[-1].payload_bytes == len(big)


# -- 13. after a crash, redeliveries one at a time -----------------------------------------------------
def test_after_a_crash_own_pending_entries_are_retried_one_at_a_time(redis_client):
    """A worker died holding a batch (one of its entries may be what killed it): on restart each
    entry is tried alone, so a poison entry reaches the dead letters without its batch-mates."""
    jobs = publish(redis_client, 4)
    ensure_group(redis_client, names.IMAGES, "detect")
    redis_client.xreadgroup("detect", "c1", {names.IMAGES: ">"}, count=4)  # then "crashed"
    stage = PickyStage()
    StageConsumer(redis_client, stage, BURST, "c1").run()
    assert stage.batches == [1, 1, 1, 1]
    assert forwarded(redis_client) == [j["image_id"] for j in jobs]


# -- 10 and security: durable, owner-only files; keys derived from job ids --------------------------------
def test_the_sink_fsyncs_the_result_folder_and_writes_owner_only_files(redis_client, tmp_path, monkeypatch):
    import faces.consumers.storage as storage

    synced_dirs = []
    real_fsync = os.fsync

    def spy(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced_dirs.append(fd)
        return real_fsync(fd)

    monkeypatch.setattr(storage.os, "fsync", spy)
    job = sink_job("face", submitted_at=1000.0)
    publishing.publish_image(redis_client, job, b"bytes", stream=names.SINK_INPUT)
    run_sink(redis_client, tmp_path)
    assert synced_dirs, "the folder was not fsynced after the rename"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / f"{job['image_id']}.json").stat().st_mode) == 0o600 & ~umask


@pytest.mark.redis_keys_left("faces:precious")
def test_an_event_cannot_make_the_sink_delete_a_key_of_its_choosing(redis_client, tmp_path):
    redis_client.set("faces:precious", b"keep me")
    job = sink_job("face", submitted_at=1000.0)
    job["image"]["blob"] = "faces:precious"
    publishing.publish_image(redis_client, job, b"bytes", stream=names.SINK_INPUT)
    redis_client.set("faces:precious", b"keep me")
    run_sink(redis_client, tmp_path)
    assert redis_client.get("faces:precious") == b"keep me"
    assert redis_client.exists(names.blob_key(job["job_id"])) == 0


def test_faces_recreate_group_names_what_it_did(redis_client, redis_url):
    from tests.pipeline import faces_cli

    publish(redis_client, 1, prefix="old")
    StageConsumer(redis_client, PickyStage(), BURST, "c1").run()
    redis_client.xgroup_destroy(names.IMAGES, "detect")
    done = faces_cli("recreate-group", "detect", env={"FACES_REDIS_URL": redis_url})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "group detect on faces:images: created at the end of the stream"
    again = faces_cli("recreate-group", "detect", env={"FACES_REDIS_URL": redis_url})
    assert again.stdout.strip().endswith("exists already; nothing done")


def test_the_sink_writes_the_result_when_only_the_picture_bytes_are_gone(redis_client, tmp_path):
    job = sink_job("face", submitted_at=1000.0)
    publishing.publish_image(redis_client, job, b"bytes", stream=names.SINK_INPUT)
    redis_client.delete(names.blob_key(job["job_id"]))  # expired or purged while in flight
    sink = SinkStage(storage=tmp_path / "storage", output=tmp_path / "output")
    StageConsumer(redis_client, sink, BURST, "s").run()
    assert json.loads((tmp_path / "storage" / f"{job['image_id']}.json").read_text())["status"] == "ok"
    assert announced(redis_client) == [(job["job_id"], "ok")] and deadletters.count(redis_client) == 0


def test_leaving_keeps_a_consumer_that_another_process_gave_entries_under_the_same_name(redis_client):
    """The check "holds nothing" and the delete are one step: entries read under the name
    in between are not lost with the consumer."""
    from faces.streams import reading

    publish(redis_client, 1)
    ensure_group(redis_client, names.IMAGES, "detect")
    redis_client.xreadgroup("detect", "twin", {names.IMAGES: ">"}, count=1)  # the other process
    assert reading.leave_if_empty(redis_client, names.IMAGES, "detect", "twin") is False
    assert len(pending_of(redis_client, "twin")) == 1
    redis_client.xack(names.IMAGES, "detect", *pending_of(redis_client, "twin"))
    assert reading.leave_if_empty(redis_client, names.IMAGES, "detect", "twin") is True
    assert redis_client.xinfo_consumers(names.IMAGES, "detect") == []


# -- issue 30: every way a job ends releases its in-flight slot and its bytes ------------------------
QUICK_RETRIES = dataclasses.replace(BURST, retry_backoff_s=0.05)
SINK = names.route("sink")


def end_ok(client: redis.Redis, tmp_path) -> dict:
    job = sink_job("face", submitted_at=1000.0)
    publishing.publish_image(client, job, b"bytes", stream=names.SINK_INPUT)
    run_sink(client, tmp_path)
    return job


def end_error_result(client: redis.Redis, tmp_path) -> dict:
    job = sink_job("face", submitted_at=1000.0, error=True)
    publishing.publish_image(client, job, b"bytes", stream=names.SINK_INPUT)
    run_sink(client, tmp_path)
    return job


def end_at_detect(stage: Callable[[str], PickyStage], *, purge_bytes: bool = False):
    """A job dead-lettered at detect by `stage` (given the image id), then the sink."""

    def end(client: redis.Redis, tmp_path) -> dict:
        [job] = publish(client, 1)
        if purge_bytes:
            client.delete(names.blob_key(job["job_id"]))
        StageConsumer(client, stage(job["image_id"]), QUICK_RETRIES, "d").run()
        run_sink(client, tmp_path)
        return job

    return end


def end_newer_release(client: redis.Redis, tmp_path) -> dict:
    """An event version this release cannot read, still naming its job (salvaged)."""
    job = job_for("/photos/new.jpg", b"new-bytes")
    publish_as_is(client, job, b"new-bytes", msgpack.packb({**job, "version": 999}, use_bin_type=True), names.IMAGES)
    StageConsumer(client, PickyStage(), QUICK_RETRIES, "d").run()
    run_sink(client, tmp_path)
    return job


def end_entry_deleted(client: redis.Redis, tmp_path) -> dict:
    [job] = publish(client, 1)
    with pytest.raises(WorkerDied):
        StageConsumer(client, DyingStage(), QUICK_RETRIES, "d").run()
    client.xdel(names.IMAGES, entry_ids(client)[0])
    StageConsumer(client, PickyStage(), QUICK_RETRIES, "d").run()
    run_sink(client, tmp_path)
    return job


def end_dead_at_the_sink(client: redis.Redis, tmp_path) -> dict:
    """The sink itself gives up on a valid job: no result, a dead letter of stage "sink"."""
    job = sink_job("face", submitted_at=1000.0)
    publishing.publish_image(client, job, b"bytes", stream=names.SINK_INPUT)
    StageConsumer(client, PickyStage(route=SINK, reject_image=job["image_id"]), QUICK_RETRIES, "s").run()
    return job


# ending -> (how the job ends, its dead letter's error type or None, its announced status,
# whether its bytes are kept for a while: a dead letter of the sink keeps them for a retry)
ENDINGS = {
    "ok": (end_ok, None, "ok", False),
    "error-result": (end_error_result, None, "error", False),
    "poison": (end_at_detect(lambda image: PickyStage(poison_image=image)), "Poison", "error", False),
    "rejected": (end_at_detect(lambda image: PickyStage(reject_image=image)), "Rejected", "error", False),
    "image-missing": (
        end_at_detect(lambda image: PickyStage(needs_image=True), purge_bytes=True),
        "ImageMissing",
        "error",
        False,
    ),
    "event-error": (end_newer_release, "EventError", "error", False),
    "entry-deleted": (end_entry_deleted, "EntryDeleted", "error", False),
    "dead-at-the-sink": (end_dead_at_the_sink, "Rejected", None, True),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_every_ending_frees_the_in_flight_slot_and_the_image_bytes(redis_client, tmp_path, ending):
    """However a job ends (a result ok or error, a dead letter at a stage for each reason, a
    dead letter of the sink), its in-flight slot is freed at once; its bytes are deleted, or,
    for a dead letter of the sink (no result, retried with `faces dlq retry`), expire after
    the retention; and no record of a held entry is left."""
    end, error_type, status, bytes_kept = ENDINGS[ending]
    job = end(redis_client, tmp_path)
    assert redis_client.scard(names.INFLIGHT) == 0
    blob = names.blob_key(job["job_id"])
    if bytes_kept:
        assert 0 < redis_client.ttl(blob) <= BURST.blob_ttl_s
    else:
        assert redis_client.exists(blob) == 0
    letters = deadletters.list_all(redis_client)
    assert [(d.job_id, d.error_type) for d in letters] == ([(job["job_id"], error_type)] if error_type else [])
    assert announced(redis_client) == ([(job["job_id"], status)] if status else [])
    assert [redis_client.exists(names.held_key(s)) for s in names.PIPELINE_STREAMS] == [0] * len(names.PIPELINE_STREAMS)
