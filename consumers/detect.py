"""Detection stage adapter: decoded images -> face boxes with scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from faces.consumers.common import decode_batch, timed
from faces.models.decode import DEFAULT_MAX_PIXELS
from faces.models.detect import DEFAULT_BACKEND, Detector, load_detector
from faces.streams import names
from faces.streams.outcomes import Delivery, Forward, Outcome


@dataclass
class DetectStage:
    detector: Detector
    max_pixels: int = DEFAULT_MAX_PIXELS
    route: names.StageRoute = field(default=names.route("detect"))
    needs_image: bool = True

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        outcomes, work = decode_batch(deliveries, "detect", self.max_pixels)
        for index, job, image in work:
            # One image per call: detectors work image by image anyway, and so each image's
            # timing is its own, not a share of its batch's.
            with timed(job, "detect"):
                [detections] = self.detector.detect([image.pixels])
            job["faces"] = [{"box": {"x": d.box.x, "y": d.box.y, "w": d.box.w, "h": d.box.h},
                             "score": round(float(d.score), 4)} for d in detections]
            job["models"]["detector"] = self.detector.name
            outcomes[index] = Forward(job)
        return outcomes


def build(options: dict) -> DetectStage:
    detector = load_detector(options.get("detector") or DEFAULT_BACKEND, min_score=options.get("min_score"))
    return DetectStage(detector, max_pixels=options.get("max_pixels", DEFAULT_MAX_PIXELS))
