"""What every image stage adapter does alike: skip failed jobs, decode the bytes, time the work
(per image where the stage works per image, as a named share where one call serves the batch)."""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from typing import Iterator, Sequence

from faces.models.decode import DecodedImage, ImageDecodeError, decode_image
from faces.schemas import events
from faces.schemas.result import BATCH_SHARE
from faces.streams.outcomes import Delivery, Forward, Outcome


def decode_batch(deliveries: Sequence[Delivery], stage: str, max_pixels: int,
                 ) -> tuple[list[Outcome | None], list[tuple[int, dict, DecodedImage]]]:
    """Split a batch into finished outcomes (jobs that already failed pass straight on; images
    that do not decode become error jobs) and the work left: (index, job copy, decoded image)."""
    outcomes: list[Outcome | None] = [None] * len(deliveries)
    work = []
    for index, delivery in enumerate(deliveries):
        if delivery.job.get("error"):
            outcomes[index] = Forward(delivery.job)
            continue
        try:
            image = decode_image(delivery.image or b"", max_pixels=max_pixels)
        except ImageDecodeError as exc:
            outcomes[index] = Forward(events.with_error(delivery.job, stage, exc.reason, str(exc)))
            continue
        job = copy.deepcopy(delivery.job)
        job["image"]["width"], job["image"]["height"] = image.width, image.height
        work.append((index, job, image))
    return outcomes, work


@contextmanager
def timed(job: dict, key: str) -> Iterator[None]:
    """Add the milliseconds the block takes to job's timings_ms[key]: work done for this image
    alone, so measured for it alone."""
    started = time.perf_counter()
    yield
    _add_ms(job, key, (time.perf_counter() - started) * 1000)


@contextmanager
def timed_shared(jobs: Sequence[dict], weights: Sequence[int], stage: str) -> Iterator[None]:
    """Time one call made for the whole batch (a network run over every face at once, which
    cannot be timed per image) and give each job its share, in proportion to its weight (its
    faces), under timings_ms[stage + "_batch_share"]: the name says it is a share, not a
    measurement. With no weight at all, the jobs share equally."""
    started = time.perf_counter()
    yield
    elapsed_ms = (time.perf_counter() - started) * 1000
    total = sum(weights)
    for job, weight in zip(jobs, weights):
        share = weight / total if total else 1 / len(jobs)
        _add_ms(job, stage + BATCH_SHARE, elapsed_ms * share)


def _add_ms(job: dict, key: str, ms: float) -> None:
    job["timings_ms"][key] = round(job["timings_ms"].get(key, 0.0) + ms, 2)
