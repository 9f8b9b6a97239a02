"""OpenCV's YuNet CNN face detector; needs its ONNX file, which is not shipped."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from faces.models.detect import BackendUnavailable
from faces.models.weights import YUNET_FILE, yunet_path
from faces.settings import ModelSettings, model_settings


class OpenCvYunet:
    """Small CNN (``cv2.FaceDetectorYN``), good on small and turned faces."""

    name = "opencv-yunet"
    native_min_face = 20
    max_upsample = 0

    def __init__(self, model_path: Path, score_threshold: float, nms_threshold: float) -> None:
        try:
            self._detector = cv2.FaceDetectorYN.create(
                str(model_path), "", (320, 320), score_threshold, nms_threshold, 5000
            )
        except cv2.error as err:
            raise BackendUnavailable(f"OpenCV could not load YuNet from {model_path}: {err}") from err

    def find(self, image: np.ndarray, upsample: int) -> list[tuple[float, float, float, float, float]]:
        """BGR working image -> (x, y, w, h, face probability) per face, in its pixels."""
        self._detector.setInputSize((image.shape[1], image.shape[0]))
        _, faces = self._detector.detect(image)
        if faces is None:
            return []
        # Columns: x, y, w, h, five (x, y) landmarks, score.
        return [(f[0], f[1], f[2], f[3], f[14]) for f in faces]


def build(
    model_path: str | os.PathLike | None = None,
    score_threshold: float = 0.9,
    nms_threshold: float = 0.3,
    models: ModelSettings | None = None,
) -> OpenCvYunet:
    """Load YuNet from ``model_path``, else where ``models`` says ($FACES_YUNET_MODEL, else the
    DeepFace weights folder; None: as the environment says).

    Raises ``BackendUnavailable`` when the file is not there.
    """
    path = check(model_path, models)
    return OpenCvYunet(path, score_threshold, nms_threshold)


def check(model_path: str | os.PathLike | None = None, models: ModelSettings | None = None) -> Path:
    """The model file's path; ``BackendUnavailable`` naming the fix when it is missing."""
    given = model_settings(models)
    path = Path(model_path or given.yunet_model or yunet_path(given))
    if not path.is_file():
        raise BackendUnavailable(
            f"opencv-yunet needs its ONNX model at {path}, which is missing; download "
            f"{YUNET_FILE} from OpenCV's model zoo there, pass model_path or set "
            "FACES_YUNET_MODEL, or use another backend"
        )
    return path
