"""What every image stage adapter does alike: skip failed jobs, decode the bytes, time the work."""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from typing import Iterator, Sequence

from models.decode import DecodedImage, ImageDecodeError, decode_image
from schemas import events
from streams.outcomes import Delivery, Forward, Outcome


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
def timed(jobs: Sequence[dict], key: str) -> Iterator[None]:
    """Add the elapsed milliseconds, shared out over `jobs`, to each job's timings_ms[key]."""
    started = time.perf_counter()
    yield
    share = (time.perf_counter() - started) * 1000 / max(len(jobs), 1)
    for job in jobs:
        job["timings_ms"][key] = round(job["timings_ms"].get(key, 0.0) + share, 2)
