"""Apparent age and gender of face crops with DeepFace's VGG-Face models.

``crop_face`` builds the network input as ``DeepFace.analyze`` does (eye-aligned crop, RGB/BGR
round trip, scaling to 0..1, letterboxing to 224x224), reusing DeepFace's own helpers, except
that a face larger than 224 px is shrunk with area averaging instead of bilinearly (the same
input whatever the photo's size; identical to DeepFace's for smaller faces).
``AgeGenderModel.predict`` runs every crop of a batch in one call. When the age and gender
weight files share their convolution trunk, it runs once for both heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from deepface.modules.detection import align_img_wrt_eyes, extract_sub_image, project_facial_area
from deepface.modules.preprocessing import resize_image

from faces.errors import FacesError
from faces.models.detect import Box
from faces.models.landmarks import eye_centres
from faces.models.precision import FLOAT32, OPENCV_FLOAT32, choose_precision
from faces.models.vgg_weights import AGE_CLASSES, GENDER_CLASSES, INPUT_SIDE, trunks_equal
from faces.models.weights import AGE_FILE, GENDER_FILE, WeightsMissing, WeightsUnreadable, deepface_weights_dir
from faces.settings import ModelSettings, model_settings

__all__ = [
    "AgeGender",
    "AgeGenderModel",
    "EmptyFaceCrop",
    "GENDER_LABELS",
    "INPUT_SIZE",
    "WeightsMissing",
    "WeightsUnreadable",
    "crop_face",
    "load_agegender",
    "load_full_models",
]

INPUT_SIZE = (INPUT_SIDE, INPUT_SIDE)
# DeepFace's order of the gender model's two outputs (DemographyUtils.GENDER_LABELS).
GENDER_LABELS = ("Woman", "Man")
_AGES = np.arange(AGE_CLASSES, dtype=np.float64)


class EmptyFaceCrop(FacesError, ValueError):
    """The face box leaves no pixels to crop.

    Cause: a box outside the image or of zero size (DeepFace silently drops such faces).
    Remedy: pass boxes from the detector, which always lie inside the image.
    """

    internal = True  # a box outside the photo: a bug upstream, never the user's


@dataclass(frozen=True)
class AgeGender:
    """Age in years (expected value of the 101-bin distribution), its 10th-90th percentile
    range, the likelier gender with its probability, and both gender probabilities."""

    age: float
    age_range: tuple[float, float]
    gender_label: str
    gender_confidence: float
    gender_scores: dict[str, float]


def crop_face(image: np.ndarray, box: Box, points: Sequence[Sequence[float]] | None = None) -> np.ndarray:
    """BGR uint8 image + face box (+ 68 points) -> (224, 224, 3) float32 network input.

    Follows DeepFace.analyze with align=True: DeepFace pads the photo with black borders
    half its size, widens the box by half on each side, rotates that patch so the eyes are
    level, cuts the rotated box out, and letterboxes it to 224x224 with values 0..1 in BGR
    order. The eyes are the centres of points 36-41 and 42-47; DeepFace's "left eye" is the
    person's left, which is the one on the image's right (42-47). Without points the face is
    not rotated, as DeepFace does when it finds no eyes. Raises ``EmptyFaceCrop``.
    """
    height, width = image.shape[:2]
    # DeepFace detects on the photo padded by half its size; its box clipping is against
    # that padded canvas, which is what lets a box poke out of the photo itself.
    pad_x, pad_y = int(0.5 * width), int(0.5 * height)
    left, top = max(-pad_x, box.x), max(-pad_y, box.y)
    right, bottom = min(width + pad_x, box.x + box.w), min(height + pad_y, box.y + box.h)
    w, h = max(0, right - left), max(0, bottom - top)
    # extract_sub_image fills whatever lies off the photo with black, exactly the pixels
    # of DeepFace's padded canvas, so the photo itself never needs padding here.
    sub_image, rel_x, rel_y = extract_sub_image(image, (left, top, w, h))
    left_eye = right_eye = None
    if points is not None:
        right_eye, left_eye = eye_centres(points)
    aligned, angle = align_img_wrt_eyes(sub_image, left_eye, right_eye)
    x1, y1, x2, y2 = project_facial_area(
        (rel_x, rel_y, rel_x + w, rel_y + h), angle, (sub_image.shape[0], sub_image.shape[1])
    )
    face = aligned[int(y1) : int(y2), int(x1) : int(x2)]
    if face.shape[0] == 0 or face.shape[1] == 0:
        raise EmptyFaceCrop(f"face box {box} leaves no pixels in a {width}x{height} image")
    # DeepFace's extract_faces turns the crop to RGB and scales it to 0..1 when it is not
    # already; analyze turns it back to BGR before resize_image. Same steps, same rounding.
    face = face[:, :, ::-1]
    if face.max() > 1:
        face = face / 255
    return resize_image(_area_shrunk(face[:, :, ::-1]), INPUT_SIZE)[0]


def _area_shrunk(face: np.ndarray) -> np.ndarray:
    """A face larger than the network's input, shrunk to the size resize_image would give it,
    with area averaging. DeepFace shrinks bilinearly, which above 2x skips source pixels
    (aliasing): the input then depends on the photo's size, not only on the face (issue 29).
    Smaller faces are left to resize_image, exactly as DeepFace enlarges them."""
    factor = min(INPUT_SIDE / face.shape[0], INPUT_SIDE / face.shape[1])
    if factor >= 1:
        return face
    size = (int(face.shape[1] * factor), int(face.shape[0] * factor))  # resize_image's rounding
    return cv2.resize(face, size, interpolation=cv2.INTER_AREA)


class AgeGenderModel:
    """DeepFace's age and gender networks; one trunk for both when their weights allow it."""

    def __init__(self, shared=None, age=None, gender=None, precision: str = FLOAT32) -> None:
        self._shared, self._age, self._gender = shared, age, gender
        self.shared_trunk = shared is not None
        self.precision = precision

    @property
    def name(self) -> str:
        """What the results' ``models.agegender`` says: networks, trunk sharing, precision."""
        parts = ["deepface-age+gender"]
        if self.shared_trunk:
            parts.append("shared-trunk")
        if self.precision != FLOAT32:
            parts.append(self.precision)
        return "/".join(parts)

    def predict(self, crops: np.ndarray) -> list[AgeGender]:
        """(n, 224, 224, 3) float32 crops from ``crop_face`` -> n ``AgeGender``, same order."""
        age_probs, gender_probs = self.predict_probabilities(crops)
        return [_summarise(a, g) for a, g in zip(age_probs, gender_probs)]

    def predict_probabilities(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw softmax outputs: ((n, 101) age, (n, 2) gender [Woman, Man]), one batched call each."""
        crops = np.asarray(crops, dtype=np.float32)
        if crops.ndim != 4 or crops.shape[1:] != (*INPUT_SIZE, 3):
            raise ValueError(f"expected crops of shape (n, 224, 224, 3), got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, AGE_CLASSES), np.float32), np.zeros((0, GENDER_CLASSES), np.float32)
        if self._shared is not None:
            age, gender = self._shared.predict_on_batch(crops)
        else:
            age, gender = self._age.predict_on_batch(crops), self._gender.predict_on_batch(crops)
        return np.asarray(age), np.asarray(gender)


def load_agegender(
    weights_dir: Path | None = None,
    threads: int | None = None,
    precision: str | None = None,
    models: ModelSettings | None = None,
) -> AgeGenderModel:
    """Load DeepFace's age and gender weights from ``weights_dir``.

    ``weights_dir`` defaults to DeepFace's own folder ($DEEPFACE_HOME/.deepface/weights).
    Nothing is ever downloaded: a missing file raises ``WeightsMissing`` (run `faces models
    fetch`), an unreadable one ``WeightsUnreadable``. ``threads`` (or $FACES_TF_THREADS for
    TensorFlow) limits the engine's thread pool. ``precision`` (or $FACES_AGEGENDER_PRECISION):
    auto, float32, bfloat16 or opencv-float32, see ``models.precision``; float32 computes
    exactly what DeepFace does. The variables come in ``models``, read by an edge (None: the
    environment's, read by faces.settings). Compares the trunks first, then builds one shared
    graph or the two full DeepFace graphs.
    """
    given = model_settings(models)
    dtype = choose_precision(precision if precision is not None else given.precision)
    folder = Path(weights_dir) if weights_dir is not None else deepface_weights_dir(given)
    age_path, gender_path = folder / AGE_FILE, folder / GENDER_FILE
    for path in (age_path, gender_path):
        if not path.is_file():
            raise WeightsMissing(path)
    if trunks_equal(age_path, gender_path):
        return AgeGenderModel(shared=_load_shared(age_path, gender_path, dtype, threads, given), precision=dtype)
    return load_full_models(folder, dtype, threads, given)


def load_full_models(
    weights_dir: Path, precision: str = FLOAT32, threads: int | None = None, models: ModelSettings | None = None
) -> AgeGenderModel:
    """DeepFace's two complete networks, each with its own trunk, whatever the files hold:
    what ``load_agegender`` runs when the trunks differ, and what DeepFace itself runs."""
    age = _load_single(AGE_CLASSES, Path(weights_dir) / AGE_FILE, precision, threads, models)
    gender = _load_single(GENDER_CLASSES, Path(weights_dir) / GENDER_FILE, precision, threads, models)
    return AgeGenderModel(age=age, gender=gender, precision=precision)


def _load_shared(age_path: Path, gender_path: Path, precision: str, threads: int | None, models: ModelSettings | None):
    """One trunk, both heads, on the engine ``precision`` names."""
    if precision == OPENCV_FLOAT32:
        from faces.models import vgg_opencv  # never imports TensorFlow

        return vgg_opencv.load_shared(age_path, gender_path, threads)
    # TensorFlow is imported only now: the other workers import this module's neighbours.
    from faces.models import tf_runtime, vggface

    tf_runtime.configure_threads(intra=threads, models=models)
    return vggface.load_shared_model(age_path, gender_path, precision)


def _load_single(classes: int, path: Path, precision: str, threads: int | None, models: ModelSettings | None):
    """One full network, on the engine ``precision`` names."""
    if precision == OPENCV_FLOAT32:
        from faces.models import vgg_opencv

        return vgg_opencv.load_single(path, classes, threads)
    from faces.models import tf_runtime, vggface

    tf_runtime.configure_threads(intra=threads, models=models)
    return vggface.load_deepface_model(classes, path, precision)


def _summarise(age_probs: np.ndarray, gender_probs: np.ndarray) -> AgeGender:
    age_probs = age_probs.astype(np.float64)
    # DeepFace's apparent age: the expected value of the distribution over 0..100 years.
    age = float(np.sum(age_probs * _AGES))
    cumulative = np.cumsum(age_probs) / max(float(age_probs.sum()), 1e-12)
    low, high = (float(np.searchsorted(cumulative, q)) for q in (0.1, 0.9))
    scores = {label: float(p) for label, p in zip(GENDER_LABELS, gender_probs)}
    label = GENDER_LABELS[int(np.argmax(gender_probs))]
    return AgeGender(
        age=age,
        age_range=(low, min(high, 100.0)),
        gender_label=label,
        gender_confidence=scores[label],
        gender_scores=scores,
    )
