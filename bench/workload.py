"""The throughput part's inputs: many distinct images made from a few photos.

The pipeline keys an image by its name and bytes, so each copy gets a name of its own and
bytes of its own: a marker appended after the JPEG's end (decoders stop at the end marker,
so every copy decodes to the same pixels and finds the same faces, and costs the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2

SMALL_SIDE = 160  # the growth runs' images: one face, this many pixels square


def distinct_copies(photos: Sequence[Path], count: int, folder: Path) -> list[Path]:
    """``count`` files in ``folder``: the photos in turn, each copy named and marked apart."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [(p.stem, p.suffix, p.read_bytes()) for p in photos]
    paths = []
    for index in range(count):
        stem, suffix, data = sources[index % len(sources)]
        path = folder / f"{stem}-copy{index:05d}{suffix}"
        path.write_bytes(data + b"bench-copy-%d" % index)
        paths.append(path)
    return paths


def small_face(photo: Path) -> bytes:
    """A SMALL_SIDE-square JPEG around the largest face the default detector finds in ``photo``
    (the face about 60 % of the side, large enough for dlib's HOG detector to find again)."""
    from faces.models.decode import decode_image
    from faces.models.detect import load_detector

    pixels = decode_image(photo.read_bytes()).pixels
    [found] = load_detector().detect([pixels])
    if not found:
        raise ValueError(f"no face in {photo} to crop the growth runs' small images from")
    box = max((d.box for d in found), key=lambda b: b.w * b.h)
    side = int(max(box.w, box.h) * 1.7)
    cx, cy = box.x + box.w // 2, box.y + box.h // 2
    height, width = pixels.shape[:2]
    x0, y0 = max(0, min(cx - side // 2, width - side)), max(0, min(cy - side // 2, height - side))
    crop = cv2.resize(pixels[y0 : y0 + side, x0 : x0 + side], (SMALL_SIDE, SMALL_SIDE), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError("could not encode the small image")
    return encoded.tobytes()


def small_copies(data: bytes, count: int, folder: Path, start: int = 0) -> list[Path]:
    """``count`` distinct copies of the small image ``data`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(start, start + count):
        path = folder / f"small-{index:05d}.jpg"
        path.write_bytes(data + b"bench-copy-%d" % index)
        paths.append(path)
    return paths
