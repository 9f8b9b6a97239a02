"""The decoded pixels the steps after detection work on, packed once by the detect stage so that
no later stage decodes the photo again.

Landmarks, pose, quality and every age/gender chip read only pixels near a face: dlib's shape
predictors sample around the box, DeepFace's crop widens the box by half on each side before it
rotates, the bundled chips add 20 % around the landmarks and rotate. So the detect stage keeps,
per face, the box widened by REGION_MARGIN of its size on every side (clipped to the photo), and
a later stage pastes those regions onto a black canvas of the photo's size: every pixel a step
reads is the photo's own, and a step gets exactly what it got from the whole photo (the tests
compare with faces.FaceAnalyzer). When the regions would cover most of the photo, the whole
photo is kept instead (never more than its pixels); pixels over MAX_PACKED_BYTES are not kept at
all, and the later stages decode the photo's bytes as before.

Raw BGR bytes, not a compressed image: a lossless encoder costs more than the decode it saves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np

from faces import settings as defaults
from faces.errors import FacesError
from faces.schemas.job import FaceBox

FORMAT = 1
# Of each face box's width (height) added on the left and right (top and bottom): twice what the
# widest reader needs (DeepFace's crop: half), so that a chip cut a little wider still finds the
# photo's own pixels.
REGION_MARGIN = 1.0
# Regions covering more than this share of the photo: the whole photo is kept instead.
WHOLE_PHOTO_SHARE = 0.6
# The same bound as a submitted file's bytes: one image never holds more than this in either key.
MAX_PACKED_BYTES = defaults.MAX_IMAGE_BYTES


class BadRegions(FacesError, ValueError):
    """Packed regions that do not describe a photo: not written by `pack`, or damaged."""

    internal = True  # bytes the detect stage did not write: a bug, not the user's


def face_regions(width: int, height: int, boxes: Sequence[FaceBox]) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) per face: its box widened by REGION_MARGIN on every side, clipped to the
    photo; the whole photo when those would cover more than WHOLE_PHOTO_SHARE of it."""
    regions = []
    for box in boxes:
        dx, dy = math.ceil(REGION_MARGIN * box["w"]) + 1, math.ceil(REGION_MARGIN * box["h"]) + 1
        x0, y0 = max(0, box["x"] - dx), max(0, box["y"] - dy)
        x1, y1 = min(width, box["x"] + box["w"] + dx), min(height, box["y"] + box["h"] + dy)
        if x1 > x0 and y1 > y0:
            regions.append((x0, y0, x1 - x0, y1 - y0))
    if sum(w * h for _, _, w, h in regions) > WHOLE_PHOTO_SHARE * width * height:
        return [(0, 0, width, height)]
    return regions


def pack(pixels: np.ndarray, boxes: Sequence[FaceBox]) -> bytes | None:
    """The regions of BGR uint8 `pixels` that the later steps read around `boxes`, as bytes
    (msgpack); None when they would exceed MAX_PACKED_BYTES."""
    height, width = pixels.shape[:2]
    regions = face_regions(width, height, boxes)
    if sum(w * h * 3 for _, _, w, h in regions) > MAX_PACKED_BYTES:
        return None
    packed: dict[str, Any] = {
        "format": FORMAT,
        "width": width,
        "height": height,
        "regions": [[x, y, w, h, pixels[y : y + h, x : x + w].tobytes()] for x, y, w, h in regions],
    }
    return msgpack.packb(packed, use_bin_type=True)


def unpack(data: bytes) -> np.ndarray:
    """BGR uint8 pixels of the photo's size: the packed regions in place, black elsewhere.
    Raises BadRegions for bytes `pack` did not write."""
    try:
        packed = msgpack.unpackb(data, raw=False)
        if packed["format"] != FORMAT:
            raise BadRegions(f"regions format {packed['format']!r}, expected {FORMAT}")
        canvas = np.zeros((int(packed["height"]), int(packed["width"]), 3), dtype=np.uint8)
        for x, y, w, h, block in packed["regions"]:
            canvas[y : y + h, x : x + w] = np.frombuffer(block, dtype=np.uint8).reshape(h, w, 3)
    except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
        if isinstance(exc, BadRegions):
            raise
        raise BadRegions(f"packed regions cannot be read: {exc!r}") from exc
    return canvas
