"""Measure every detector backend on the annotated dlib-faces photos.

Run: .venv/bin/python -m tests.measure_models [backend ...]
Prints found/annotated faces, false positives (no annotated face at IoU >= 0.3) and the
mean milliseconds per photo, as quoted in models/detect.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from models.decode import decode_image
from models.detect import BACKENDS, BackendUnavailable, load_detector
from tests.annotations import match_boxes, read_annotations

DATA = Path(__file__).resolve().parents[2] / "shared/testdata/dlib-faces"


def measure(name: str) -> str:
    try:
        detector = load_detector(name)
    except BackendUnavailable as err:
        return f"{name:12s} unavailable: {err}"
    annotated = read_annotations(DATA)
    found = total = false_pos = 0
    elapsed = 0.0
    for image in annotated:
        pixels = decode_image(image.path.read_bytes()).pixels
        start = time.perf_counter()
        detections = detector.detect([pixels])[0]
        elapsed += time.perf_counter() - start
        truth = [face.box for face in image.faces]
        pairs = match_boxes([d.box for d in detections], truth, 0.3)
        found += len(pairs)
        total += len(truth)
        false_pos += len(detections) - len(pairs)
    ms = 1000 * elapsed / len(annotated)
    return f"{name:12s} found {found}/{total}  false positives {false_pos}  {ms:.0f} ms/photo"


if __name__ == "__main__":
    for backend in sys.argv[1:] or BACKENDS:
        print(measure(backend), flush=True)
