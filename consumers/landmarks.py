"""Landmark stage adapter: boxes -> 68 (or 5, `--landmarks 5`) points, head pose and quality per face (models/analysis.py
`add_landmarks`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from faces.consumers.common import analyse_batch
from faces.consumers.registry import Routed, routed
from faces.models.analysis import add_landmarks
from faces.models.decode import DEFAULT_MAX_PIXELS
from faces.models.landmarks import Landmarker, load_landmarker
from faces.streams.outcomes import Delivery, Outcome


@routed("landmarks")
@dataclass
class LandmarksStage(Routed):
    landmarker: Landmarker
    max_pixels: int = DEFAULT_MAX_PIXELS
    needs_image: bool = True
    takes_pixels: bool = True  # the regions detect kept (models/regions.py): no decoding here

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        return analyse_batch(deliveries, self.route.name, self.max_pixels, partial(add_landmarks, self.landmarker))


def build(options: dict) -> LandmarksStage:
    return LandmarksStage(
        load_landmarker(choice=options.get("landmarks")), max_pixels=options.get("max_pixels", DEFAULT_MAX_PIXELS)
    )
