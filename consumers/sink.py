"""Sink adapter: finished jobs -> one JSON per image in storage (and an annotated picture)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from faces.consumers.pictures import write_picture
from faces.consumers.registry import Routed, routed
from faces.consumers.storage import inside, sweep_temp_files, write_if
from faces.schemas.result import build_result, dumps, supersedes
from faces.streams.outcomes import Delivery, Finish, Outcome


@routed("sink")
@dataclass
class SinkStage(Routed):
    storage: Path
    output: Path | None = None  # annotated pictures go here; None: no pictures

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
            written = write_if(
                inside(self.storage, f"{result['image_id']}.json"),
                text.encode(),
                partial(supersedes, result),  # supersedes(result, current)
            )
            if written and self.output is not None and result["status"] == "ok" and delivery.image:
                write_picture(self.output, result, delivery.image)
            outcomes.append(Finish(delivery.job, result["status"], text, result["submitted_at"]))
        return outcomes


def build(options: dict) -> SinkStage:
    output = options.get("output")
    stage = SinkStage(storage=Path(options["storage"]), output=Path(output) if output else None)
    # A sink killed mid-write leaves its temporary file beside the results: clear old ones at start.
    for folder in (stage.storage, stage.output):
        if folder is not None:
            sweep_temp_files(folder)
    return stage
