"""Face landmarks with dlib's regression-tree predictors, with head pose and crop quality.

Two point sets (``--landmarks``): the 68 iBUG points (the default: the points this pipeline
promises, and the ones head pose is fitted to) or dlib's 5 points (eye corners and nose base),
whose model its author releases without restriction, unlike the 68-point one (trained on iBUG
300-W, whose licence excludes commercial use; docs/models.md, Licences). With 5 points the pose
is null and the result's notes say why; quality needs only the box, so it is measured either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import dlib
import face_recognition_models
import numpy as np

from faces import exits
from faces.errors import FacesError
from faces.models.detect import Box
from faces.models.pose import Pose, estimate_pose
from faces.models.quality import Quality, measure_quality
from faces.schemas.job import Face, Job

# --landmarks value -> (model name as results and `faces models check` give it, point count).
MODELS = {"68": "dlib-shape-predictor-68", "5": "dlib-shape-predictor-5"}
CHOICES = tuple(MODELS)
DEFAULT_CHOICE = "68"
POINT_COUNT = 68  # of the default set
_MODEL_FILES = {
    "68": face_recognition_models.pose_predictor_model_location,
    "5": face_recognition_models.pose_predictor_five_point_model_location,
}
# Which points are each eye's, per point count: (on the image's left, on the image's right).
# 68: the six points round each eye (36-41, 42-47); 5: each eye's two corners, the eye on the
# image's right first (0 outer, 1 inner), then the one on its left (2 outer, 3 inner).
_EYES = {68: (slice(36, 42), slice(42, 48)), 5: (slice(2, 4), slice(0, 2))}
POSE_UNAVAILABLE = "pose: null, it is fitted to the 68-point landmarks (--landmarks 68); these are 5 points"


class LandmarksChoiceError(FacesError, ValueError):
    """The landmark choice is not one of CHOICES.

    Cause: a typo in --landmarks or $FACES_LANDMARKS. Remedy: 68 (the default) or 5.
    """

    exit_code = exits.USAGE  # a bad value, as --landmarks refuses it


def check_choice(choice: str | None) -> str:
    """The landmark set asked for ("68" when None); LandmarksChoiceError when it is not one."""
    value = (choice or DEFAULT_CHOICE).strip()
    if value not in MODELS:
        raise LandmarksChoiceError(f"unknown landmark set {value!r}; choose one of {', '.join(CHOICES)}")
    return value


@dataclass(frozen=True)
class FaceLandmarks:
    """One face: its (x, y) points in original-image pixels (68 in iBUG order, or dlib's 5), the
    pose (None when the points cannot give one) and the crop quality."""

    points: tuple[tuple[float, float], ...]
    pose: Pose | None
    quality: Quality

    def fields(self) -> Face:
        """The face's landmarks, pose and quality as the result document has them (rounded)."""
        return {
            "landmarks": [[round(x, 2), round(y, 2)] for x, y in self.points],
            "pose": None if self.pose is None else {k: round(v, 2) for k, v in asdict(self.pose).items()},
            "quality": {k: round(v, 3) for k, v in asdict(self.quality).items()},
        }


class Landmarker:
    """Places the points inside given face boxes with a dlib shape predictor."""

    def __init__(self, model_path: str, name: str = MODELS[DEFAULT_CHOICE]) -> None:
        self._predictor = dlib.shape_predictor(model_path)
        self.name = name  # what results say under models.landmarks

    @property
    def has_pose(self) -> bool:
        return self.name == MODELS["68"]

    def locate(self, image: np.ndarray, boxes: Sequence[Box]) -> list[FaceLandmarks]:
        """BGR uint8 (h, w, 3) image + face boxes -> one ``FaceLandmarks`` per box, same order."""
        if not boxes:
            return []
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        height, width = image.shape[:2]
        faces = []
        for box in boxes:
            # dlib rectangles are inclusive of their right and bottom edges.
            rect = dlib.rectangle(box.x, box.y, box.x + box.w - 1, box.y + box.h - 1)
            shape = self._predictor(rgb, rect)
            points = tuple((float(p.x), float(p.y)) for p in shape.parts())
            faces.append(
                FaceLandmarks(
                    points=points,
                    pose=estimate_pose(points, width, height) if self.has_pose else None,
                    quality=measure_quality(image, box),
                )
            )
        return faces

    def describe(self, job: Job) -> None:
        """Tell the job which landmark model ran and, with 5 points, why its poses are null."""
        job["models"]["landmarks"] = self.name
        if self.has_pose:
            job["notes"].pop("landmarks", None)
        else:
            job["notes"]["landmarks"] = POSE_UNAVAILABLE


def load_landmarker(model_path: str | None = None, choice: str | None = None) -> Landmarker:
    """The predictor of the landmark set `choice` ("68" when None; see CHOICES), from
    face_recognition_models unless `model_path` is given. Raises LandmarksChoiceError."""
    choice = check_choice(choice)
    return Landmarker(model_path or _MODEL_FILES[choice](), MODELS[choice])


def eye_centres(points: Sequence[Sequence[float]]) -> tuple[tuple[float, float], tuple[float, float]]:
    """Centres of the eye on the image's left and on its right, from 68 points (the means of
    36-41 and 42-47) or 5 (the means of each eye's two corners)."""
    left_eye, right_eye = _EYES[len(points)]
    left = np.mean(np.asarray(points[left_eye], dtype=np.float64), axis=0)
    right = np.mean(np.asarray(points[right_eye], dtype=np.float64), axis=0)
    return (float(left[0]), float(left[1])), (float(right[0]), float(right[1]))
