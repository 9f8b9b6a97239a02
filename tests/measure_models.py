"""Measure the models on this machine.

Detectors on the annotated dlib-faces photos (found/annotated faces, false positives with
no annotated face at IoU >= 0.3, mean ms per photo, as quoted in models/detect.py):
    .venv/bin/python -m tests.measure_models [backend ...]
Age/gender seconds per face at batch sizes 1 and 16, from a weights folder (e.g. one
written by models.synthetic.write_synthetic_weights):
    .venv/bin/python -m tests.measure_models --agegender WEIGHTS_DIR
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from faces.models.decode import decode_image
from faces.models.detect import BACKENDS, BackendUnavailable, load_detector
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


def measure_agegender(weights_dir: str, rounds: int = 3) -> str:
    import numpy as np

    from faces.models.agegender import load_agegender

    start = time.perf_counter()
    model = load_agegender(Path(weights_dir))
    lines = [f"shared trunk {model.shared_trunk}, loaded in {time.perf_counter() - start:.1f} s"]
    crops = np.random.default_rng(0).random((16, 224, 224, 3), dtype=np.float32)
    for batch in (1, 16):
        model.predict(crops[:batch])  # the first call builds TensorFlow's kernels
        start = time.perf_counter()
        for _ in range(rounds):
            model.predict(crops[:batch])
        per_face = (time.perf_counter() - start) / (rounds * batch)
        lines.append(f"batch {batch:2d}: {per_face:.3f} s/face")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--agegender"]:
        print(measure_agegender(sys.argv[2]))
    else:
        for backend in sys.argv[1:] or BACKENDS:
            print(measure(backend), flush=True)
