"""The HTTP API's view of what it published: which job of an image is the latest, so that an
image still in the pipeline can be told from an unknown one (publishing.publish_image records
it with the job); and each job's own record, its image and its own result (names.job_key)."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from faces.streams import names
from faces.streams.groups import text


def upload_state(client: redis.Redis, image_id: str) -> tuple[str | None, bool]:
    """(latest job id published through the API for `image_id`, or None; whether that job is
    still in flight)."""
    raw = client.get(names.upload_key(image_id))
    if raw is None:
        return None, False
    job_id = text(raw)
    return job_id, bool(client.sismember(names.INFLIGHT, job_id))


def note_job(client: redis.Redis, job_id: str, image_id: str, ttl_s: int) -> None:
    """Record that `job_id` (just published through the API) is a job of `image_id`, for as long
    as results are kept; the sink adds the job's own result to the same record."""
    key = names.job_key(job_id)
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, names.JOB_IMAGE_FIELD, image_id)
    pipe.expire(key, max(1, int(ttl_s)))
    pipe.execute()


@dataclass(frozen=True)
class JobState:
    """One job as the API knows it: its image (None: not a job published through the API, or
    expired), its own result document (None: none yet, or none ever), whether it is in flight."""

    image_id: str | None
    result: str | None
    in_flight: bool


def job_state(client: redis.Redis, job_id: str) -> JobState:
    pipe = client.pipeline(transaction=False)
    pipe.hmget(names.job_key(job_id), [names.JOB_IMAGE_FIELD, names.JOB_RESULT_FIELD])
    pipe.sismember(names.INFLIGHT, job_id)
    (image_id, result), in_flight = pipe.execute()
    return JobState(
        text(image_id) if image_id is not None else None, text(result) if result is not None else None, bool(in_flight)
    )
