"""The key-leak check every test on a private redis-server runs after it (tests/keyleaks.py)."""

from __future__ import annotations

import pytest

from faces.streams import names
from tests.keyleaks import leaked_keys


def _finish(client, job_id: str) -> None:
    """What the sink's commit leaves of a finished job: its announcement and its result."""
    client.xadd(names.RESULTS, {"job_id": job_id, "image_id": f"img-{job_id}", "status": "ok"})
    client.set(names.result_key(f"img-{job_id}"), "{}")


def test_a_finished_jobs_bytes_and_slot_and_a_stray_key_are_leaks_work_in_progress_is_not(redis_client):
    """A finished job's bytes and in-flight slot (what the sink's commit deletes) and a key of no
    family are reported, one line each; an unfinished job's bytes and slot and every durable
    family are not. The test then deletes what it planted, so its own check passes."""
    _finish(redis_client, "done")
    redis_client.set(names.blob_key("done"), b"jpeg")  # the sink's commit not deleting the bytes
    redis_client.set(names.blob_key("pending"), b"jpeg")
    redis_client.sadd(names.INFLIGHT, "done", "pending")
    redis_client.set("stray", "1")
    redis_client.xadd(names.DEAD_LETTERS, {"job_id": "early", "stage": "detect"})
    redis_client.set(names.blob_key("early"), b"jpeg")  # dead before the sink: still on its way

    assert leaked_keys(redis_client) == [
        "stray key stray",
        f"image bytes of finished job done ({names.blob_key('done')})",
        f"in-flight slot of finished job done ({names.INFLIGHT})",
    ]
    assert leaked_keys(redis_client, allowed=["stray"]) == leaked_keys(redis_client)[1:]

    redis_client.delete("stray", names.blob_key("done"))
    redis_client.srem(names.INFLIGHT, "done")
    assert leaked_keys(redis_client) == []


def test_the_sinks_dead_letter_finishes_a_job_whose_bytes_may_only_stay_a_while(redis_client):
    """A job dead-lettered by the sink (its last stage) is finished: its in-flight slot and bytes
    that never expire are leaks; bytes kept with an expiry (for `faces dlq retry`) are not."""
    redis_client.xadd(names.DEAD_LETTERS, {"job_id": "dead", "stage": "sink"})
    redis_client.set(names.blob_key("dead"), b"jpeg")
    redis_client.sadd(names.INFLIGHT, "dead")
    assert leaked_keys(redis_client) == [
        f"image bytes that never expire of job dead the sink dead-lettered ({names.blob_key('dead')})",
        f"in-flight slot of finished job dead ({names.INFLIGHT})",
    ]
    redis_client.expire(names.blob_key("dead"), 600)
    redis_client.srem(names.INFLIGHT, "dead")
    assert leaked_keys(redis_client) == []


@pytest.mark.redis_keys_left("scratch:*")
def test_a_declared_key_is_no_leak(redis_client):
    """A key the test declares with redis_keys_left stays without failing it (the fixture's own check)."""
    redis_client.set("scratch:1", "kept on purpose")
