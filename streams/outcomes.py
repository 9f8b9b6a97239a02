"""What a stage hands back to the runtime for each delivery, and what the runtime hands it.

A stage never calls Redis: it returns one outcome per delivery, and the runtime turns all of
them into one atomic commit together with the acknowledgements (streams/commit.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from faces.schemas.job import Job
from faces.streams.names import StageRoute


@dataclass(frozen=True)
class Delivery:
    """One stream entry given to a stage: the decoded job and, if asked for, the image bytes."""

    entry_id: str
    attempt: int  # 1 on first delivery; grows with every redelivery
    job: Job
    image: bytes | None = None
    pixels: bytes | None = None  # the regions detect kept (names.pixels_key), for stages that take them


@dataclass(frozen=True)
class Forward:
    """Pass the (updated) job to the next stage's stream."""

    job: Job
    pixels: bytes | None = None  # kept under names.pixels_key in the same commit (detect's regions)


@dataclass(frozen=True)
class Finish:
    """The sink's outcome: the result is written; keep it in Redis, announce it, free the bytes."""

    job: Job
    status: str  # "ok" | "error"
    result_json: str
    submitted_at: str  # ISO submission time, on Redis's clock: a newer submission's result wins


# The status a job's result is announced with (the results stream) when it was not kept: the
# image already has a newer submission's result (schemas/result.py `supersedes`), which stays.
SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Reject:
    """A delivery that can never succeed (non-retryable): it goes to the dead-letter stream."""

    error_type: str
    message: str


Outcome = Forward | Finish | Reject


class Stage(Protocol):
    """A pipeline stage as the runtime sees it."""

    route: StageRoute
    needs_image: bool  # fetch each job's image bytes (claim-check) before handle()
    # (optional) takes_pixels: fetch the regions detect kept instead; the bytes only where none were kept

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """One outcome per delivery, in order. Raising means: retry the batch later."""
        ...
