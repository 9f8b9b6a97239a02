"""Distinct test photos made from the sample photos in data/ (each variant has its own bytes,
so its own sha256 and result file)."""

from __future__ import annotations

from pathlib import Path

import cv2

DATA = Path(__file__).resolve().parents[1] / "data"


def photo_variants(folder: Path, count: int, source: str = "group.jpg") -> list[Path]:
    """Write `count` visually identical, byte-distinct JPEGs of data/`source` into `folder`."""
    base = cv2.imread(str(DATA / source))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        pixels = base.copy()
        pixels[0, : 8] = [(i >> b) & 1 and 255 or 0 for b in range(8)][0]  # mark the variant
        pixels[1, 0] = (i % 256, i // 256, 7)
        path = folder / f"variant_{i:03d}.jpg"
        cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    return paths
