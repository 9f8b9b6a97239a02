"""Landmark stage adapter: boxes -> 68 points, head pose and quality per face."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

from faces.consumers.common import decode_batch, timed
from faces.models.decode import DEFAULT_MAX_PIXELS
from faces.models.detect import Box
from faces.models.landmarks import Landmarker, load_landmarker
from faces.streams import names
from faces.streams.outcomes import Delivery, Forward, Outcome


@dataclass
class LandmarksStage:
    landmarker: Landmarker
    max_pixels: int = DEFAULT_MAX_PIXELS
    route: names.StageRoute = field(default=names.route("landmarks"))
    needs_image: bool = True

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        outcomes, work = decode_batch(deliveries, "landmarks", self.max_pixels)
        for index, job, image in work:
            with timed(job, "landmarks"):
                boxes = [Box(**face["box"]) for face in job["faces"]]
                located = self.landmarker.locate(image.pixels, boxes)
            for face, marks in zip(job["faces"], located):
                face["landmarks"] = [[round(x, 2), round(y, 2)] for x, y in marks.points]
                face["pose"] = {k: round(v, 2) for k, v in asdict(marks.pose).items()}
                face["quality"] = {k: round(v, 3) for k, v in asdict(marks.quality).items()}
            job["models"]["landmarks"] = "dlib-shape-predictor-68"
            outcomes[index] = Forward(job)
        return outcomes


def build(options: dict) -> LandmarksStage:
    return LandmarksStage(load_landmarker(), max_pixels=options.get("max_pixels", DEFAULT_MAX_PIXELS))
