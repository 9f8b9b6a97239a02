"""Sink adapter: finished jobs -> one JSON per image in storage (and an annotated picture)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2

from consumers.storage import inside, write_atomic, write_if
from models.annotate import draw_result
from models.decode import ImageDecodeError, decode_image
from schemas.result import build_result, dumps, supersedes
from streams import names
from streams.outcomes import Delivery, Finish, Outcome


@dataclass
class SinkStage:
    storage: Path
    output: Path | None = None       # annotated pictures go here; None: no pictures
    route: names.StageRoute = field(default=names.route("sink"))

    @property
    def needs_image(self) -> bool:
        return self.output is not None

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for delivery in deliveries:
            result = build_result(delivery.job)
            text = dumps(result)
            # A newer submission's result is never replaced by an older job finishing late,
            # nor an ok result by an error of the same job (Redis applies the same rule).
            written = write_if(inside(self.storage, f"{result['image_id']}.json"), text.encode(),
                               lambda current: supersedes(result, current))
            if written and self.output is not None and result["status"] == "ok" and delivery.image:
                self._draw(delivery.image, result)
            outcomes.append(Finish(delivery.job, result["status"], text, result["submitted_at"]))
        return outcomes

    def _draw(self, data: bytes, result: dict) -> None:
        try:
            image = decode_image(data)
        except ImageDecodeError:
            return  # decoded fine upstream; nothing sensible to draw if it does not now
        ok, encoded = cv2.imencode(".jpg", draw_result(image.pixels, result), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if ok:
            write_atomic(inside(self.output, f"{result['image_id']}.jpg"), encoded.tobytes())


def build(options: dict) -> SinkStage:
    output = options.get("output")
    return SinkStage(storage=Path(options["storage"]), output=Path(output) if output else None)
