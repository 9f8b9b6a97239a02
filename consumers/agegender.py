"""Age/gender stage adapter: every face of the batch cut for the chosen model (DeepFace's, or the
bundled dlib networks; see models/agegender_backends.py) and predicted in one batched call
(models/analysis.py `add_age_gender`).

DeepFace's weight files are looked at (size and mtime) before every batch: weights that appear
or change while the worker runs are used from the next batch on, without a restart. When
DeepFace is required (`--agegender deepface`) and cannot run, the stage still flows: ages and
genders stay null and the result says which file is missing and how to fetch it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faces.consumers.common import analyse_batch
from faces.consumers.registry import Routed, routed
from faces.logs import native_stderr_logged
from faces.models.agegender_backends import DEFAULT_CHOICE, LoadedBackend, load_backend, weights_signature
from faces.models.analysis import Photo, add_age_gender
from faces.models.decode import DEFAULT_MAX_PIXELS
from faces.settings import ModelSettings
from faces.streams.outcomes import Delivery, Outcome


@routed("agegender")
@dataclass
class AgeGenderStage(Routed):
    choice: str = DEFAULT_CHOICE
    weights_dir: Path | None = None
    models: ModelSettings | None = None  # DeepFace's home, precision, threads (None: the environment's)
    max_pixels: int = DEFAULT_MAX_PIXELS
    needs_image: bool = True
    takes_pixels: bool = True  # the regions detect kept (models/regions.py): no decoding here
    _loaded: LoadedBackend | None = None
    _signature: tuple | None = None

    def loaded(self) -> LoadedBackend:
        """The backend for the next batch, loaded again when DeepFace's weight files changed."""
        signature = weights_signature(self.weights_dir, self.models)
        if self._loaded is None or signature != self._signature:
            # The first load may import TensorFlow, whose C++ start-up notices would otherwise
            # land in the worker's JSON log as raw lines.
            with native_stderr_logged("agegender"):
                self._loaded = load_backend(self.choice, self.weights_dir, self.models)
            self._signature = signature
        return self._loaded

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        return analyse_batch(deliveries, self.route.name, self.max_pixels, self._predict)

    def _predict(self, photos: Sequence[Photo]) -> None:
        # The backend is looked up per batch: weights that changed are used from this one on.
        add_age_gender(self.loaded(), photos)


def build(options: dict) -> AgeGenderStage:
    stage = AgeGenderStage(
        choice=options.get("agegender") or DEFAULT_CHOICE,
        weights_dir=options.get("weights_dir"),
        models=options.get("models"),
        max_pixels=options.get("max_pixels", DEFAULT_MAX_PIXELS),
    )
    stage.loaded()  # load now: the first batch should not pay for it
    return stage
