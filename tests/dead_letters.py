"""A dead letter written straight to the dead-letter stream, as the `faces dlq` tests plant one:
one shape (stage detect, entry 1-0, error Boom) so each test names only what it varies."""

from __future__ import annotations

import redis

from faces.schemas import events
from faces.streams import deadletters, names


def plant_dead_letter(client: redis.Redis, job: dict, *, deliveries: int = 3, with_payload: bool = True) -> str:
    """XADD one dead letter of the detect stage for `job` (its event as the payload unless
    `with_payload` is False, a letter whose event was lost); returns its entry id."""
    letter = deadletters.fields(
        stage="detect",
        stream=names.IMAGES,
        entry_id="1-0",
        error_type="Boom",
        message="boom",
        deliveries=deliveries,
        job_id=job["job_id"],
        image_id=job["image_id"],
        payload=events.encode(job) if with_payload else None,
    )
    return client.xadd(names.DEAD_LETTERS, letter).decode()
