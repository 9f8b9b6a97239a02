"""Age/gender stage adapter: every face of the batch cut for the chosen model (DeepFace's, or the
bundled dlib networks; see models/agegender_backends.py) and predicted in one batched call.

DeepFace's weight files are looked at (size and mtime) before every batch: weights that appear
or change while the worker runs are used from the next batch on, without a restart. When
DeepFace is required (`--agegender deepface`) and cannot run, the stage still flows: ages and
genders stay null and the result says which file is missing and how to fetch it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from faces.consumers.common import decode_batch, timed, timed_shared
from faces.models.agegender_backends import DEFAULT_CHOICE, LoadedBackend, load_backend, weights_signature
from faces.models.decode import DEFAULT_MAX_PIXELS
from faces.ops.logs import native_stderr_logged
from faces.streams import names
from faces.streams.outcomes import Delivery, Forward, Outcome


@dataclass
class AgeGenderStage:
    choice: str = DEFAULT_CHOICE
    weights_dir: Path | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    route: names.StageRoute = field(default=names.route("agegender"))
    needs_image: bool = True
    _loaded: LoadedBackend | None = None
    _signature: tuple | None = None

    def loaded(self) -> LoadedBackend:
        """The backend for the next batch, loaded again when DeepFace's weight files changed."""
        signature = weights_signature(self.weights_dir)
        if self._loaded is None or signature != self._signature:
            # The first load may import TensorFlow, whose C++ start-up notices would otherwise
            # land in the worker's JSON log as raw lines.
            with native_stderr_logged("agegender"):
                self._loaded = load_backend(self.choice, self.weights_dir)
            self._signature = signature
        return self._loaded

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        outcomes, work = decode_batch(deliveries, "agegender", self.max_pixels)
        loaded = self.loaded()
        if loaded.backend is None:
            for index, job, _ in work:
                job["models"]["agegender"] = None
                job["notes"]["agegender"] = loaded.note
                outcomes[index] = Forward(job)
            return outcomes
        backend = loaded.backend
        chips, owners = [], []
        for _, job, image in work:  # cutting the faces out is per image: timed per image
            with timed(job, "agegender"):
                chips.extend(backend.chips(image.pixels, job["faces"]))
            owners.extend(job["faces"])
        # One network run for every face of the batch: each image gets its faces' share.
        with timed_shared([job for _, job, _ in work], [len(job["faces"]) for _, job, _ in work],
                          "agegender"):
            predictions = backend.predict(chips)
        for face, pred in zip(owners, predictions):
            face["age"] = round(float(pred.age), 2)
            face["age_range"] = [round(float(pred.age_range[0]), 2), round(float(pred.age_range[1]), 2)]
            face["gender"] = {"label": pred.gender_label,
                              "confidence": round(float(pred.gender_confidence), 4),
                              "scores": {k: round(float(v), 4) for k, v in pred.gender_scores.items()}}
        for index, job, _ in work:
            job["models"]["agegender"] = backend.name
            if loaded.note:  # DeepFace's weights are there but broken: the fallback says why
                job["notes"]["agegender"] = loaded.note
            else:
                job["notes"].pop("agegender", None)
            outcomes[index] = Forward(job)
        return outcomes


def build(options: dict) -> AgeGenderStage:
    stage = AgeGenderStage(choice=options.get("agegender") or DEFAULT_CHOICE,
                           weights_dir=options.get("weights_dir"),
                           max_pixels=options.get("max_pixels", DEFAULT_MAX_PIXELS))
    stage.loaded()  # load now: the first batch should not pay for it
    return stage
