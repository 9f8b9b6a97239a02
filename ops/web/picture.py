"""The annotated JPEG of a result: the sink's picture when it wrote one, else drawn now from the
stored result and the image's bytes (the upload kept on disk, or the submitted file)."""

from __future__ import annotations

from pathlib import Path

import cv2

from faces.consumers.pictures import JPEG_QUALITY
from faces.consumers.storage import inside
from faces.models.annotate import draw_result
from faces.models.decode import ImageDecodeError, decode_image
from faces.producer.files import SourceChanged, read_same_bytes


class NoPicture(LookupError):
    """The picture cannot be had: the sink wrote none and the image's bytes are gone or changed.

    Remedy: submit the image again."""


def annotated_jpeg(result: dict, output: Path | None) -> bytes:
    """JPEG bytes of `result` (an ok result) drawn on its photo: the sink's picture in `output`
    when there is one (None: draw it anew); NoPicture saying why not."""
    written = inside(output, f"{result['image_id']}.jpg") if output is not None else None
    if written is not None and written.is_file():
        return written.read_bytes()
    image = result["image"]
    try:
        pixels = decode_image(read_same_bytes(image["path"], image["sha256"])).pixels
    except (SourceChanged, ImageDecodeError) as exc:
        raise NoPicture(f"no picture of {result['image_id']}: the sink drew none and {exc}; "
                        "submit the image again") from exc
    ok, encoded = cv2.imencode(".jpg", draw_result(pixels, result), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise NoPicture(f"no picture of {result['image_id']}: the JPEG encoder refused it")
    return encoded.tobytes()
