"""Detection stage adapter: decoded images -> face boxes with scores (models/analysis.py
`find_faces`), forwarded with the pixels around each face, which the later stages work on
instead of decoding the photo again (models/regions.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from faces.consumers.common import analyse_batch
from faces.consumers.registry import Routed, routed
from faces.models.analysis import find_faces, kept_regions
from faces.models.decode import DEFAULT_MAX_PIXELS
from faces.models.detect import DEFAULT_BACKEND, Detector, load_detector
from faces.streams.outcomes import Delivery, Outcome


@routed("detect")
@dataclass
class DetectStage(Routed):
    detector: Detector
    max_pixels: int = DEFAULT_MAX_PIXELS
    needs_image: bool = True

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        # The only stage that decodes the photo: it keeps the regions the later steps read.
        return analyse_batch(
            deliveries, self.route.name, self.max_pixels, partial(find_faces, self.detector), keep=kept_regions
        )


def build(options: dict) -> DetectStage:
    detector = load_detector(
        options.get("detector") or DEFAULT_BACKEND, models=options.get("models"), min_score=options.get("min_score")
    )
    return DetectStage(detector, max_pixels=options.get("max_pixels", DEFAULT_MAX_PIXELS))
