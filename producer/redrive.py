"""Retrying dead letters: put the entry back on the stream it failed on, with its bytes.

The retry is a new job (new id, submitted now) so that it cannot collide with the original
job's error result still on its way to the sink, and its result replaces that error. The
bytes of a dead-lettered image are usually released once its error result was written, so a
retry reads the file again (it must hash the same) when Redis no longer holds them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis

from faces import exits
from faces import settings as defaults
from faces.errors import FacesError
from faces.producer.files import SourceChanged, read_same_bytes
from faces.schemas import events
from faces.streams import history, publishing
from faces.streams.deadletters import DeadLetter


class RetryError(FacesError, ValueError):
    """A dead letter cannot be retried.

    Cause: it has no payload (it was never a readable event) or its image file is gone or changed.
    Remedy: drop it (`faces dlq drop ID`) and submit the file again.
    """

    exit_code = exits.SOME_ERRORS  # `faces dlq retry` goes on with the others, then exits 3


def retry_letter(
    client: redis.Redis,
    letter: DeadLetter,
    *,
    high_water: int = defaults.HIGH_WATER,
    while_waiting: Callable[[], None] = lambda: None,
) -> str:
    """Re-queue one dead letter; the new entry id. RetryError when it cannot be. Like every
    producer it waits while `high_water` images are in flight (0: no limit), and the retry is
    admitted, published and the letter deleted in one atomic step."""
    if letter.payload is None:
        if letter.payload_bytes and letter.image_id:
            raise RetryError(
                f"{letter.id}: its {letter.payload_bytes}-byte payload was too large to "
                f"keep; run `faces replay --image {letter.image_id}` instead"
            )
        raise RetryError(f"{letter.id} has no payload to retry")
    if not letter.stream:
        raise RetryError(f"{letter.id} names no stream to retry on")
    try:
        job = events.decode(letter.payload)
    except events.EventError as exc:
        raise RetryError(f"{letter.id} is not a valid event ({exc}); drop it instead") from exc
    data = history.held_bytes(client, job["job_id"])
    if data is None:
        try:
            data = read_same_bytes(job["image"]["path"], job["image"]["sha256"])
        except SourceChanged as exc:
            raise RetryError(f"{letter.id}: {exc}") from exc
    job_id = uuid.uuid4().hex
    retried = events.as_new_job(job, job_id=job_id, submitted_at=time.time())
    return publishing.publish_when_room(
        client, retried, data, high_water, stream=letter.stream, settles=letter.id, while_waiting=while_waiting
    )
