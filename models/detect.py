"""Face detection: BGR images in, boxes with scores out, whatever the backend.

Every backend sees a working copy of the photo scaled by ``plan_scale``: large photos are
shrunk, small faces are magnified, and the boxes come back in original-image pixels. The
backends themselves live in ``models/detectors/``, one file each, and are imported only when
loaded, so asking for Haar never imports dlib's CNN and vice versa.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from faces.errors import FacesError
from faces.models.detectors import BACKENDS, DEFAULT_BACKEND
from faces.models.detectors import MODULES as _MODULES
from faces.settings import ModelSettings

# The smallest face, in original pixels, every backend must still find by default. The
# annotated test photos hold faces of 37 px, so 40 is the size the pipeline promises.
DEFAULT_MIN_FACE_PX = 40
# Upper bound on the pixels a backend analyses, after its own upsampling. 16 MP lets dlib's
# HOG keep the 40 px promise (2x magnification) on photos up to 4 MP; past that the photo is
# shrunk and the smallest face found grows as the square root of the photo's size.
DEFAULT_MAX_WORK_PIXELS = 16_000_000
# Detections scoring below this are dropped, per backend (scores are not comparable across
# backends). dlib-hog: chosen on the 43 hand-annotated faces of dlib's example photos, whose
# weakest true face scores 0.222 (the next 0.34), while the round mission patch on the suit in
# data/astronaut.jpg scores 0.159; 0.2 keeps all 43 and drops the patch. `--min-face-score`
# overrides it (0 keeps everything).
DEFAULT_MIN_SCORES = {"dlib-hog": 0.2}


class UnknownBackend(FacesError, ValueError):
    """A detector name that is not in ``BACKENDS``.

    Cause: a typo in the ``--detector`` option or the FACES_DETECTOR variable.
    Remedy: use one of ``models.detect.BACKENDS``.
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown detector backend {name!r}; choose one of {', '.join(BACKENDS)}")


class BackendUnavailable(FacesError, RuntimeError):
    """The backend exists but cannot run here, usually because its model file is missing.

    Cause: e.g. opencv-yunet without its ONNX file. Remedy: follow the message (configure
    the file's path or run ``faces models fetch``), or pick another backend.
    """


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in original-image pixels; (x, y) is the top-left corner."""

    x: int
    y: int
    w: int
    h: int

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other``, 0.0 when they do not overlap."""
        left, top = max(self.x, other.x), max(self.y, other.y)
        right = min(self.x + self.w, other.x + other.w)
        bottom = min(self.y + self.h, other.y + other.h)
        inter = max(0, right - left) * max(0, bottom - top)
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Detection:
    """One face: its box and the backend's score (higher = more face-like).

    Scores are the backend's own scale (HOG SVM margin, Haar stage weight, CNN confidence,
    YuNet probability) and are not comparable across backends.
    """

    box: Box
    score: float


class Detector(Protocol):
    """What every loaded detector offers: a batch of BGR images in, one list per image out."""

    name: str

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]: ...


class Backend(Protocol):
    """A raw backend, run by ``ScaledDetector`` on an already scaled working image.

    ``native_min_face`` is the smallest face (px) it finds without upsampling;
    ``max_upsample`` how many times it can double the image itself (0 = cannot).
    ``find`` returns boxes in the working image's pixels as (x, y, w, h, score).
    """

    name: str
    native_min_face: int
    max_upsample: int

    def find(self, image: np.ndarray, upsample: int) -> list[tuple[float, float, float, float, float]]: ...


@dataclass(frozen=True)
class ScalePlan:
    """How to present a photo to a backend: resize factor, then the backend's doublings."""

    resize: float
    upsample: int

    @property
    def magnification(self) -> float:
        return self.resize * 2**self.upsample


def plan_scale(
    width: int,
    height: int,
    native_min_face: int,
    max_upsample: int,
    min_face_px: int = DEFAULT_MIN_FACE_PX,
    max_work_pixels: int = DEFAULT_MAX_WORK_PIXELS,
) -> ScalePlan:
    """Choose resize and upsampling so a ``min_face_px`` face reaches ``native_min_face``.

    The rule: the wanted magnification is native_min_face / min_face_px (HOG's 80 px window
    against 40 px faces: 2x), capped so that the analysed image stays within
    ``max_work_pixels``. The backend's own doublings (dlib's pyramid_up, the setting it was
    tuned with) cover the powers of two and a resize covers the rest, so a 500x375 photo
    runs as dlib's ``run(img, 1)`` and a 12 MP photo is shrunk to 0.58x then doubled.
    """
    wanted = native_min_face / min_face_px
    affordable = math.sqrt(max_work_pixels / max(1, width * height))
    magnification = min(wanted, affordable)
    upsample = 0
    # The small tolerance keeps an exact 2x from becoming a 4x after float rounding.
    while upsample < max_upsample and magnification > 2**upsample * 1.001:
        upsample += 1
    resize = magnification / 2**upsample
    # Resampling by less than 2 % only blurs; run on the original pixels instead.
    if abs(resize - 1.0) < 0.02:
        resize = 1.0
    return ScalePlan(resize=resize, upsample=upsample)


class ScaledDetector:
    """A ``Detector`` that scales each photo by ``plan_scale`` and maps boxes back."""

    def __init__(
        self,
        backend: Backend,
        min_face_px: int = DEFAULT_MIN_FACE_PX,
        max_work_pixels: int = DEFAULT_MAX_WORK_PIXELS,
        min_score: float | None = None,
    ) -> None:
        if min_face_px < 1 or max_work_pixels < 1:
            raise ValueError("min_face_px and max_work_pixels must be positive")
        self.backend = backend
        self.name = backend.name
        self.min_score = DEFAULT_MIN_SCORES.get(backend.name, 0.0) if min_score is None else min_score
        self.min_face_px = min_face_px
        self.max_work_pixels = max_work_pixels

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Find faces in each BGR uint8 (h, w, 3) image; boxes in its own pixels, best first."""
        return [self._detect_one(image) for image in images]

    def plan(self, image: np.ndarray) -> ScalePlan:
        height, width = image.shape[:2]
        return plan_scale(
            width,
            height,
            self.backend.native_min_face,
            self.backend.max_upsample,
            self.min_face_px,
            self.max_work_pixels,
        )

    def _detect_one(self, image: np.ndarray) -> list[Detection]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 (h, w, 3) image, got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        plan = self.plan(image)
        work = image
        if plan.resize != 1.0:
            size = (max(1, round(width * plan.resize)), max(1, round(height * plan.resize)))
            interpolation = cv2.INTER_AREA if plan.resize < 1 else cv2.INTER_LINEAR
            work = cv2.resize(image, size, interpolation=interpolation)
        # Map back with the exact per-axis factors of the rounded working size.
        fx, fy = work.shape[1] / width, work.shape[0] / height
        found = []
        for x, y, w, h, score in self.backend.find(work, plan.upsample):
            box = _clip(x / fx, y / fy, (x + w) / fx, (y + h) / fy, width, height)
            if box is not None and score >= self.min_score:
                found.append(Detection(box=box, score=float(score)))
        return sorted(found, key=lambda d: d.score, reverse=True)


def _clip(left: float, top: float, right: float, bottom: float, width: int, height: int) -> Box | None:
    """Round to whole pixels and keep the part inside the image; None when nothing is left."""
    x0, y0 = max(0, round(left)), max(0, round(top))
    x1, y1 = min(width, round(right)), min(height, round(bottom))
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(x=x0, y=y0, w=x1 - x0, h=y1 - y0)


def check_detector(name: str, models: ModelSettings | None = None) -> None:
    """Raise what ``load_detector(name)`` would for a bad name or a missing model file, without
    loading the model: the CLI refuses such a choice before any worker starts. A backend module
    with files to find has a ``check(models=...)``, and its ``build`` takes ``models`` (where
    the files are; None: as the environment says)."""
    if name not in _MODULES:
        raise UnknownBackend(name)
    check = getattr(importlib.import_module(_MODULES[name]), "check", None)
    if check is not None:
        check(models=models)


def load_detector(name: str = DEFAULT_BACKEND, models: ModelSettings | None = None, **options) -> Detector:
    """Build the detector ``name`` (one of ``BACKENDS``).

    Options ``min_face_px`` and ``max_work_pixels`` set the scaling rule (see
    ``plan_scale``), ``min_score`` the score below which detections are dropped (default per
    backend, ``DEFAULT_MIN_SCORES``); the rest go to the backend (e.g. ``model_path`` for opencv-yunet),
    and ``models`` to a backend with files to find (see ``check_detector``).
    Raises ``UnknownBackend`` for a bad name and ``BackendUnavailable`` when the backend's
    model file is missing.
    """
    if name not in _MODULES:
        raise UnknownBackend(name)
    scaling = {key: options.pop(key) for key in ("min_face_px", "max_work_pixels", "min_score") if key in options}
    module = importlib.import_module(_MODULES[name])
    if hasattr(module, "check"):
        options["models"] = models
    backend = module.build(**options)
    return ScaledDetector(backend, **scaling)
