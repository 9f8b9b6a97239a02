"""Age/gender stage adapter: every face of the batch cropped as DeepFace does, predicted in one
batched call. Without weight files the stage still flows: ages and genders stay null and the
result says which file is missing and how to fetch it; the model is looked for again later, so
weights installed while the worker runs are picked up without a restart."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from consumers.common import decode_batch, timed
from models.agegender import AgeGenderModel, crop_face, load_agegender
from models.weights import WeightsMissing, WeightsUnreadable
from models.decode import DEFAULT_MAX_PIXELS
from models.detect import Box
from streams import names
from streams.outcomes import Delivery, Forward, Outcome

RELOAD_EVERY_S = 30.0


@dataclass
class AgeGenderStage:
    weights_dir: Path | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    route: names.StageRoute = field(default=names.route("agegender"))
    needs_image: bool = True
    _model: AgeGenderModel | None = None
    _missing: tuple[str, str] | None = None   # (error type, message) while weights are unusable
    _next_load_at: float = 0.0

    def model(self) -> AgeGenderModel | None:
        """The loaded model, or None while its weights are missing (retried every 30 s)."""
        if self._model is None and time.monotonic() >= self._next_load_at:
            try:
                self._model = load_agegender(self.weights_dir)
                self._missing = None
            except (WeightsMissing, WeightsUnreadable) as exc:
                self._missing = (type(exc).__name__, str(exc))
                self._next_load_at = time.monotonic() + RELOAD_EVERY_S
        return self._model

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        outcomes, work = decode_batch(deliveries, "agegender", self.max_pixels)
        model = self.model()
        jobs = [job for _, job, _ in work]
        if model is None:
            for index, job, _ in work:
                job["models"]["agegender"] = None
                status = "weights_missing" if self._missing[0] == "WeightsMissing" else "weights_unreadable"
                job["notes"]["agegender"] = {"status": status, "message": self._missing[1]}
                outcomes[index] = Forward(job)
            return outcomes
        with timed(jobs, "agegender"):
            crops, owners = [], []
            for _, job, image in work:
                for face in job["faces"]:
                    crops.append(crop_face(image.pixels, Box(**face["box"]), face.get("landmarks")))
                    owners.append(face)
            predictions = model.predict(np.stack(crops)) if crops else []
        for face, pred in zip(owners, predictions):
            face["age"] = round(float(pred.age), 2)
            face["age_range"] = [round(float(pred.age_range[0]), 2), round(float(pred.age_range[1]), 2)]
            face["gender"] = {"label": pred.gender_label,
                              "confidence": round(float(pred.gender_confidence), 4),
                              "scores": {k: round(float(v), 4) for k, v in pred.gender_scores.items()}}
        for index, job, _ in work:
            job["models"]["agegender"] = model.name
            job["notes"].pop("agegender", None)
            outcomes[index] = Forward(job)
        return outcomes


def build(options: dict) -> AgeGenderStage:
    stage = AgeGenderStage(weights_dir=options.get("weights_dir"),
                           max_pixels=options.get("max_pixels", DEFAULT_MAX_PIXELS))
    stage.model()  # load now: the first batch should not pay for it
    return stage
