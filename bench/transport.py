"""The transport alone: one hop of a real job event through the embedded redis-server.

The events are real: each is the job the landmarks stage hands to age/gender for a benchmark
photo (boxes, 68 points, pose, quality per face), made by the stage adapters themselves from
the photo, so their msgpack size is what the pipeline actually moves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from bench.hop import time_hops
from bench.machine import redis_server_version
from bench.stages import Photo
from faces.consumers.detect import DetectStage
from faces.consumers.landmarks import LandmarksStage
from faces.models.detect import Detector
from faces.models.landmarks import Landmarker
from faces.producer.files import job_for
from faces.schemas.job import Job
from faces.streams.connection import connect
from faces.streams.embedded import EmbeddedRedis
from faces.streams.outcomes import Delivery, Forward


def landmarked_job(photo: Photo, detector: Detector, landmarker: Landmarker) -> Job:
    """The event the landmarks stage forwards for ``photo``, built by the real adapters."""
    job = job_for(str(photo.path), photo.data)
    for stage in (DetectStage(detector), LandmarksStage(landmarker)):
        [outcome] = stage.handle([Delivery("0-0", 1, job, photo.data)])
        assert isinstance(outcome, Forward), f"{photo.path} did not pass {type(stage).__name__}"
        job = outcome.job
    return job


def pick_events(
    photos: Sequence[Photo], face_counts: Sequence[int], detector: Detector, landmarker: Landmarker
) -> dict[str, tuple[Job, bytes]]:
    """The landmarked jobs of the photo with the median face count and of the one with the
    most faces, with their image bytes: a typical event and the largest."""
    order = sorted(range(len(photos)), key=lambda i: face_counts[i])
    chosen = {"typical": order[len(order) // 2], "largest": order[-1]}
    return {name: (landmarked_job(photos[i], detector, landmarker), photos[i].data) for name, i in chosen.items()}


def measure_transport(jobs: dict[str, tuple[Job, bytes]], workdir: Path, hops: int, repeat: int) -> dict:
    """p50/p99 of one hop and events per second, per event, one at a time and in batches of 8,
    and with the image fetch the image stages add, against a fresh embedded redis-server."""
    figures = {}
    with EmbeddedRedis(workdir / "redis") as server:
        client = connect(server.url)
        version = redis_server_version(client)
        for name, (job, image) in jobs.items():
            for label, batch, with_image in (("single", 1, False), ("batch8", 8, False), ("single+image", 1, True)):
                runs = [
                    time_hops(client, job, hops, batch, image if with_image else None) for _ in range(max(1, repeat))
                ]
                seconds = sorted(s for run in runs for s in run.seconds)
                figures[f"{name}/{label}"] = {
                    "event_bytes": runs[0].event_bytes,
                    "faces": len(job["faces"]),
                    "batch": batch,
                    "image_bytes": len(image) if with_image else 0,
                    "hops": len(seconds),
                    "p50_ms": 1000 * _quantile(seconds, 0.50),
                    "p99_ms": 1000 * _quantile(seconds, 0.99),
                    "events_per_s": batch * len(seconds) / sum(seconds),
                }
        client.close()
    return {"redis_version": version, "hops": figures}


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of already sorted values."""
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]
