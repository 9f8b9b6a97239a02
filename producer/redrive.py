"""Retrying dead letters: put the entry back on the stream it failed on, with its bytes.

The bytes of a dead-lettered image were released when its error result was written, so a
retry reads the file again (it must hash the same) before re-queueing the entry.
"""

from __future__ import annotations

import redis

from producer.files import SourceChanged, read_same_bytes
from schemas import events
from streams import deadletters, history
from streams.deadletters import DeadLetter


class RetryError(ValueError):
    """A dead letter cannot be retried.

    Cause: it has no payload (it was never a readable event) or its image file is gone or changed.
    Remedy: drop it (`faces dlq drop ID`) and submit the file again.
    """


def retry_letter(client: redis.Redis, letter: DeadLetter) -> str:
    """Re-queue one dead letter; the new entry id. RetryError when it cannot be."""
    if letter.payload is None:
        raise RetryError(f"{letter.id} has no payload to retry")
    try:
        job = events.decode(letter.payload)
    except events.EventError as exc:
        raise RetryError(f"{letter.id} is not a valid event ({exc}); drop it instead") from exc
    if not history.has_bytes(client, job):
        try:
            data = read_same_bytes(job["image"]["path"], job["image"]["sha256"])
        except SourceChanged as exc:
            raise RetryError(f"{letter.id}: {exc}") from exc
        history.store_bytes(client, job, data)
    new_id = deadletters.retry(client, letter)
    if new_id is None:
        raise RetryError(f"{letter.id} names no stream to retry on")
    return new_id
