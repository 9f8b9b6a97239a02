"""dlib's HOG + linear SVM frontal face detector (``dlib.get_frontal_face_detector``)."""

from __future__ import annotations

import cv2
import dlib
import numpy as np


class DlibHog:
    """HOG sliding window of 80x80 px; finds frontal and slightly turned faces."""

    name = "dlib-hog"
    native_min_face = 80
    max_upsample = 3

    def __init__(self, adjust_threshold: float = 0.0) -> None:
        self._detector = dlib.get_frontal_face_detector()
        self.adjust_threshold = adjust_threshold

    def find(self, image: np.ndarray, upsample: int) -> list[tuple[float, float, float, float, float]]:
        """BGR working image -> (x, y, w, h, SVM score) per face, in that image's pixels."""
        # On gray pixels, not colour: dlib computes a colour image's HOG gradients on each of
        # the three channels and keeps the largest, which costs a third more CPU in the whole
        # detect step. On the 15 benchmark photos the gray input finds the same 73 faces and
        # all 43 annotated ones of dlib's testing/training sets (docs/benchmark.md, issue 16).
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        # run() rather than __call__: it also returns each window's SVM score.
        rects, scores, _ = self._detector.run(gray, upsample, self.adjust_threshold)
        return [(r.left(), r.top(), r.width(), r.height(), score) for r, score in zip(rects, scores)]


def build(adjust_threshold: float = 0.0) -> DlibHog:
    """``adjust_threshold`` shifts the SVM decision threshold (negative = more faces)."""
    return DlibHog(adjust_threshold=adjust_threshold)
