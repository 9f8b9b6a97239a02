"""The pictures of a result: the annotated JPEG (the sink's picture when it wrote one, else drawn
now from the stored result and the image's bytes: the upload kept on disk, or the submitted
file), and the plain photo the web page draws its own boxes over."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faces.consumers.pictures import JPEG_QUALITY
from faces.consumers.storage import inside
from faces.errors import FacesError
from faces.models.annotate import draw_result
from faces.models.decode import ImageDecodeError, decode_image
from faces.producer.files import SourceChanged, read_same_bytes


class NoPicture(FacesError, LookupError):
    """The picture cannot be had: the sink wrote none and the image's bytes are gone or changed.

    Remedy: submit the image again."""

    http_status = 404


def annotated_jpeg(result: dict, output: Path | None) -> bytes:
    """JPEG bytes of `result` (an ok result) drawn on its photo: the sink's picture in `output`
    when there is one (None: draw it anew); NoPicture saying why not."""
    written = inside(output, f"{result['image_id']}.jpg") if output is not None else None
    if written is not None and written.is_file():
        return written.read_bytes()
    return _jpeg(result, draw_result(_pixels(result), result))


def plain_jpeg(result: dict) -> bytes:
    """JPEG bytes of `result`'s photo as the pipeline analysed it (decoded, turned upright as its
    EXIF says), nothing drawn on it: the boxes' coordinates are in its pixels. NoPicture when the
    photo is gone or changed."""
    return _jpeg(result, _pixels(result))


def _pixels(result: dict) -> np.ndarray:
    image = result["image"]
    try:
        return decode_image(read_same_bytes(image["path"], image["sha256"])).pixels
    except (SourceChanged, ImageDecodeError) as exc:
        raise NoPicture(
            f"no picture of {result['image_id']}: its photo cannot be read again ({exc}); submit the image again"
        ) from exc


def _jpeg(result: dict, pixels: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise NoPicture(f"no picture of {result['image_id']}: the JPEG encoder refused it")
    return encoded.tobytes()
