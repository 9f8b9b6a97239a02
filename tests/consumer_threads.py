"""Running the consumer runtime in threads of the test process, with small test stages
(tests/stages.py), and publishing jobs for it: shared by the runtime and delivery tests."""

from __future__ import annotations

import threading

import redis

from faces.producer.files import job_for
from faces.schemas import events
from faces.streams import names, publishing
from faces.streams.consumer import StageConsumer
from faces.streams.reading import PAYLOAD_FIELD
from faces.streams.settings import RuntimeSettings

FAST = RuntimeSettings(
    batch=4, block_ms=50, claim_idle_ms=400, claim_every_s=0.1, retry_backoff_s=0.05, grace_s=5, trim_every_s=0.2
)


def publish(client: redis.Redis, count: int, prefix: str = "img", stream: str = names.IMAGES) -> list[dict]:
    """`count` small jobs `<prefix><i>` with their bytes, as a producer publishes them."""
    jobs = []
    for i in range(count):
        job = job_for(f"/photos/{prefix}{i}.jpg", f"{prefix}-{i}".encode())
        publishing.publish_image(client, job, b"bytes", stream=stream)
        jobs.append(job)
    return jobs


def start(client, stage, settings=FAST, name="c1") -> tuple[StageConsumer, threading.Thread]:
    consumer = StageConsumer(client, stage, settings, name)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    return consumer, thread


def stop(consumer: StageConsumer, thread: threading.Thread) -> None:
    consumer.request_stop()
    thread.join(10)
    assert not thread.is_alive(), "consumer did not stop"


def forwarded(client: redis.Redis, stream: str = names.DETECTED) -> list[str]:
    """Image ids on `stream`, one per entry: duplicates show up twice."""
    return [events.decode(f[PAYLOAD_FIELD])["image_id"] for _, f in client.xrange(stream)]
