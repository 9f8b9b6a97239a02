"""Distinct test photos made from the sample photos in data/ (each variant has its own bytes,
so its own sha256 and result file)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"


def photo_variants(folder: Path, count: int, source: str = "group.jpg") -> list[Path]:
    """Write `count` JPEGs of data/`source` that differ only in bytes after the end-of-image
    marker (decoders ignore them), so the pixels and faces are identical but every sha256 differs."""
    base = (DATA / source).read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"variant_{i:03d}.jpg"
        path.write_bytes(base + f"variant {i}".encode())
        paths.append(path)
    return paths
