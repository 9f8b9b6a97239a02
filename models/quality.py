"""Image quality of a face crop: sharpness, brightness and contrast of its gray pixels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faces.models.detect import Box


@dataclass(frozen=True)
class Quality:
    """Measures of the face crop in its original resolution.

    sharpness: variance of the Laplacian (higher = sharper; depends on face size, so compare
    faces of similar size); brightness: mean gray 0..255; contrast: gray standard deviation.
    All three are 0.0 for a box with no pixels inside the image.
    """

    sharpness: float
    brightness: float
    contrast: float


def measure_quality(image: np.ndarray, box: Box) -> Quality:
    """BGR uint8 image + face box (original pixels) -> ``Quality`` of the box's pixels."""
    height, width = image.shape[:2]
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(width, box.x + box.w), min(height, box.y + box.h)
    if x1 <= x0 or y1 <= y0:
        return Quality(sharpness=0.0, brightness=0.0, contrast=0.0)
    gray = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    return Quality(sharpness=sharpness, brightness=float(gray.mean()), contrast=float(gray.std()))
