"""Measure the models on this machine.

Detectors on the annotated dlib-faces photos, each photo analysed by the Python API (faces/api.py)
as the pipeline would: found/annotated faces, false positives with no annotated face at IoU >= 0.3,
mean detection ms per photo (as quoted in models/detect.py) and mean ms of the whole analysis:
    .venv/bin/python -m tests.measure_models [backend ...]
Age/gender seconds per face at batch sizes 1 and 16, from a weights folder (e.g. one
written by bench.synthetic.write_synthetic_weights):
    .venv/bin/python -m tests.measure_models --agegender WEIGHTS_DIR
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from faces.api import FaceAnalyzer
from faces.models.detect import BACKENDS, BackendUnavailable, Box
from tests.annotations import match_boxes, read_annotations

DATA = Path(__file__).resolve().parents[2] / "shared/testdata/dlib-faces"


def measure(name: str) -> str:
    try:
        # The bundled age/gender networks: the same on every machine, and light to load.
        analyzer = FaceAnalyzer(detector=name, agegender="dlib")
    except BackendUnavailable as err:
        return f"{name:12s} unavailable: {err}"
    annotated = read_annotations(DATA)
    found = total = false_pos = 0
    detect_ms = analysis_ms = 0.0
    for image in annotated:
        result = analyzer.analyze(image.path)
        detect_ms += result["timings_ms"]["detect"]
        analysis_ms += sum(result["timings_ms"].values())
        boxes = [Box(**face["box"]) for face in result["faces"]]
        truth = [face.box for face in image.faces]
        pairs = match_boxes(boxes, truth, 0.3)
        found += len(pairs)
        total += len(truth)
        false_pos += len(boxes) - len(pairs)
    photos = len(annotated)
    return (
        f"{name:12s} found {found}/{total}  false positives {false_pos}  "
        f"{detect_ms / photos:.0f} ms/photo  (whole analysis {analysis_ms / photos:.0f} ms/photo)"
    )


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
