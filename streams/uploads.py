"""The HTTP API's view of what it published: which job of an image is the latest, so that an
image still in the pipeline can be told from an unknown one (publishing.publish_image records
it with the job)."""

from __future__ import annotations

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
