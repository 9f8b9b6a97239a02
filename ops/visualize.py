"""`faces visualize`: redraw annotated pictures from stored results and their source photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2

from consumers.storage import inside, write_atomic
from models.annotate import draw_result
from models.decode import ImageDecodeError, decode_image


def visualize_folder(storage: Path, output: Path) -> tuple[int, int]:
    """Draw every ok result in `storage` onto its photo into `output`; (drawn, unreadable)."""
    drawn = unreadable = 0
    for result_file in sorted(storage.glob("*.json")):
        result = json.loads(result_file.read_text())
        if result.get("status") != "ok":
            continue
        try:
            image = decode_image(Path(result["image"]["path"]).read_bytes())
        except (OSError, ImageDecodeError):
            unreadable += 1
            continue
        ok, encoded = cv2.imencode(".jpg", draw_result(image.pixels, result), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if ok:
            write_atomic(inside(output, f"{result['image_id']}.jpg"), encoded.tobytes())
            drawn += 1
    return drawn, unreadable
