"""dlib's MMOD CNN face detector, weights from the face_recognition_models package."""

from __future__ import annotations

import dlib
import face_recognition_models
import numpy as np


class DlibCnn:
    """Max-margin object detection CNN; robust to pose but ~5 s per photo on a small CPU."""

    name = "dlib-cnn"
    native_min_face = 80
    max_upsample = 2

    def __init__(self, model_path: str) -> None:
        self._detector = dlib.cnn_face_detection_model_v1(model_path)

    def find(self, image: np.ndarray, upsample: int) -> list[tuple[float, float, float, float, float]]:
        """BGR working image -> (x, y, w, h, MMOD confidence) per face, in its pixels."""
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        found = self._detector(rgb, upsample)
        return [(d.rect.left(), d.rect.top(), d.rect.width(), d.rect.height(), d.confidence) for d in found]


def build(model_path: str | None = None) -> DlibCnn:
    """Load mmod_human_face_detector.dat (from face_recognition_models unless given)."""
    return DlibCnn(model_path or face_recognition_models.cnn_face_detector_model_location())
