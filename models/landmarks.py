"""68-point face landmarks (dlib's iBUG 300-W predictor), with head pose and crop quality."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dlib
import face_recognition_models
import numpy as np

from faces.models.detect import Box
from faces.models.pose import Pose, estimate_pose
from faces.models.quality import Quality, measure_quality

POINT_COUNT = 68


@dataclass(frozen=True)
class FaceLandmarks:
    """One face: 68 (x, y) points in iBUG order and original-image pixels, pose, quality."""

    points: tuple[tuple[float, float], ...]
    pose: Pose
    quality: Quality


class Landmarker:
    """Places the 68 points inside given face boxes with dlib's regression-tree predictor."""

    def __init__(self, model_path: str) -> None:
        self._predictor = dlib.shape_predictor(model_path)

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
                    pose=estimate_pose(points, width, height),
                    quality=measure_quality(image, box),
                )
            )
        return faces


def load_landmarker(model_path: str | None = None) -> Landmarker:
    """Load shape_predictor_68_face_landmarks.dat (from face_recognition_models unless given)."""
    return Landmarker(model_path or face_recognition_models.pose_predictor_model_location())


def eye_centres(points: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], tuple[float, float]]:
    """Centres of the eye on the image's left (points 36-41) and on its right (42-47)."""
    left = np.mean(np.asarray(points[36:42], dtype=np.float64), axis=0)
    right = np.mean(np.asarray(points[42:48], dtype=np.float64), axis=0)
    return (float(left[0]), float(left[1])), (float(right[0]), float(right[1]))
