"""Which age/gender model runs: DeepFace's when its weights are there, else the bundled one.

`auto` (the default) uses DeepFace's VGG-Face pair when both weight files are present and load,
and the bundled dlib networks (models/agegender_bundled.py) otherwise, so a fresh install gives
real ages offline. `deepface` insists on DeepFace (ages stay null, with a note naming the
missing file, until its weights are there); `dlib` always runs the bundled networks.

Both backends have the same two calls: `chips(pixels, faces)` cuts each face's network input
from one decoded BGR photo, `predict(chips)` runs every face of a batch at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import structlog

from faces import settings as defaults
from faces.errors import FacesError
from faces.models.agegender import AgeGender
from faces.models.weights import AGE_FILE, GENDER_FILE, WeightsMissing, WeightsUnreadable, deepface_weights_dir
from faces.schemas.job import Face
from faces.settings import ModelSettings

log = structlog.get_logger(__name__)

CHOICES = ("auto", "deepface", "dlib")
DEFAULT_CHOICE = defaults.AGEGENDER
ENV_VAR = "FACES_AGEGENDER"


class AgeGenderChoiceError(FacesError, ValueError):
    """An unknown age/gender backend was asked for.

    Cause: `--agegender` or $FACES_AGEGENDER is not one of auto, deepface, dlib.
    Remedy: use one of those (auto picks DeepFace when its weights are there, else dlib).
    """


class AgeGenderBackend(Protocol):
    name: str

    def chips(self, pixels: np.ndarray, faces: Sequence[Face]) -> list[Any]:
        """Each face's network input, cut from one decoded BGR photo."""
        ...

    def predict(self, chips: Sequence[Any]) -> list[AgeGender]:
        """One AgeGender per chip, same order, all in one batched call per network."""
        ...


@dataclass(frozen=True)
class LoadedBackend:
    backend: AgeGenderBackend | None  # None: DeepFace was required and cannot run
    note: dict | None  # what results say about it (why DeepFace is not running)


def check_choice(choice: str | None) -> str:
    """The backend `choice` (None: DEFAULT_CHOICE), checked; AgeGenderChoiceError if bad. The
    command line reads $FACES_AGEGENDER (ENV_VAR) into --agegender: models read no environment."""
    value = (choice or DEFAULT_CHOICE).strip().lower()
    if value not in CHOICES:
        raise AgeGenderChoiceError(
            f"unknown age/gender backend {value!r} (--agegender / ${ENV_VAR}); choose one of {', '.join(CHOICES)}"
        )
    return value


def load_backend(choice: str, weights_dir: Path | None = None, models: ModelSettings | None = None) -> LoadedBackend:
    """Load the backend `choice` names (see the module docstring); ``models``: DeepFace's
    home, precision and threads as an edge read them (None: the environment's)."""
    if choice != "dlib":
        try:
            from faces.models.agegender import load_agegender  # TensorFlow only when DeepFace runs

            return LoadedBackend(_DeepFaceBackend(load_agegender(weights_dir, models=models)), None)
        except (WeightsMissing, WeightsUnreadable) as exc:
            status = "weights_missing" if isinstance(exc, WeightsMissing) else "weights_unreadable"
            note = {"status": status, "message": str(exc)}
            if choice == "deepface":
                log.warning("agegender.deepface_unavailable", **note, effect="ages and genders stay null")
                return LoadedBackend(None, note)
            if status == "weights_unreadable":  # present but broken: worth a word, auto or not
                log.warning("agegender.deepface_unavailable", **note, effect="using the bundled model")
                return LoadedBackend(_bundled(), note)
    return LoadedBackend(_bundled(), None)


def _bundled() -> AgeGenderBackend:
    from faces.models.agegender_bundled import BundledAgeGender

    return _BundledBackend(BundledAgeGender())


def weights_signature(weights_dir: Path | None = None, models: ModelSettings | None = None) -> tuple:
    """(size, mtime) of DeepFace's two weight files (None for a missing one): a change means
    weights appeared or were replaced, and the backend is loaded again before the next batch."""
    folder = Path(weights_dir) if weights_dir is not None else deepface_weights_dir(models)
    signature: list[tuple[int, int] | None] = []
    for name in (AGE_FILE, GENDER_FILE):
        try:
            stat = (folder / name).stat()
            signature.append((stat.st_size, stat.st_mtime_ns))
        except OSError:
            signature.append(None)
    return tuple(signature)


class _DeepFaceBackend:
    def __init__(self, model) -> None:
        self.model = model
        self.name = model.name

    def chips(self, pixels: np.ndarray, faces: Sequence[Face]) -> list[np.ndarray]:
        from faces.models.agegender import crop_face
        from faces.models.detect import Box

        return [crop_face(pixels, Box(**face["box"]), face.get("landmarks")) for face in faces]

    def predict(self, chips: Sequence[np.ndarray]) -> list[AgeGender]:
        return self.model.predict(np.stack(chips)) if len(chips) else []


class _BundledBackend:
    def __init__(self, model) -> None:
        self.model = model
        self.name = model.name

    def chips(self, pixels: np.ndarray, faces: Sequence[Face]) -> list:
        from faces.models.detect import Box

        # BGR as decoded: the model puts each chip in RGB order, not the whole photo.
        return [self.model.chips(pixels, Box(**face["box"]), bgr=True) for face in faces]

    def predict(self, chips: Sequence) -> list[AgeGender]:
        return self.model.predict(chips)
