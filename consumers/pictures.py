"""One annotated picture: a result drawn on its photo's bytes, written atomically as JPEG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faces.consumers.storage import inside, write_atomic
from faces.models.annotate import draw_result
from faces.models.decode import ImageDecodeError, decode_image

JPEG_QUALITY = 90


def write_picture(output: Path, result: dict, data: bytes) -> bool:
    """Draw `result` on the photo `data` into OUTPUT/<image id>.jpg; False when the bytes do
    not decode (nothing sensible to draw) or the encoder refuses."""
    try:
        image = decode_image(data)
    except ImageDecodeError:
        return False
    return draw_picture(output, result, image.pixels)


def draw_picture(output: Path, result: dict, pixels: np.ndarray) -> bool:
    """Draw `result` on decoded BGR `pixels` into OUTPUT/<image id>.jpg; False if not encoded."""
    ok, encoded = cv2.imencode(".jpg", draw_result(pixels, result), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if ok:
        write_atomic(inside(output, f"{result['image_id']}.jpg"), encoded.tobytes())
    return bool(ok)
