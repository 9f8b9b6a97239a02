"""What every image stage adapter does alike with a batch: jobs that already failed pass
straight on, the others' pixels are made ready (the regions detect kept, or else the bytes
decoded; bytes that do not decode fail their job here), the stage's analysis step
(models/analysis.py) runs on the photos left, and every job is forwarded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

from faces.models.analysis import Photo, decode_photo, photo_of_regions
from faces.streams.outcomes import Delivery, Forward, Outcome

# One analysis step of models/analysis.py, bound to its loaded model: it fills in the photos' jobs.
Step = Callable[[Sequence[Photo]], None]
# What a stage hands on for the later stages to work on instead of the bytes (detect: the regions).
Keep = Callable[[Photo], "bytes | None"]


def analyse_batch(
    deliveries: Sequence[Delivery], stage: str, max_pixels: int, step: Step, keep: Keep | None = None
) -> list[Outcome]:
    """One outcome per delivery, in order: each job forwarded, analysed by `step` when its image
    decoded (with `keep(photo)` for the later stages), failed at `stage` when it did not,
    unchanged when it had failed before."""
    outcomes, work = decode_batch(deliveries, stage, max_pixels)
    step([photo for _, photo in work])
    for index, photo in work:
        outcomes[index] = Forward(photo.job, keep(photo) if keep is not None else None)
    return cast(list[Outcome], outcomes)  # every slot filled: by decode_batch, or just above


def decode_batch(
    deliveries: Sequence[Delivery],
    stage: str,
    max_pixels: int,
) -> tuple[list[Outcome | None], list[tuple[int, Photo]]]:
    """Split a batch into finished outcomes (jobs that already failed pass straight on; images
    that do not decode become error jobs) and the work left: (index, photo with a job copy).
    A delivery with pixels kept by detect is not decoded: its regions are put back in place."""
    outcomes: list[Outcome | None] = [None] * len(deliveries)
    work = []
    for index, delivery in enumerate(deliveries):
        if delivery.job.get("error"):
            outcomes[index] = Forward(delivery.job)
            continue
        if delivery.pixels is not None:
            opened = photo_of_regions(delivery.job, delivery.pixels, stage, max_pixels)
        else:
            opened = decode_photo(delivery.job, delivery.image or b"", stage, max_pixels)
        if isinstance(opened, Photo):
            work.append((index, opened))
        else:
            outcomes[index] = Forward(opened)
    return outcomes, work
