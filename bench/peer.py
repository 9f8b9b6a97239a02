"""The peer: DeepFace's own single-process loop, run in a fresh interpreter.

``run_peer`` starts ``python -m bench.peer`` in a new process, which imports DeepFace and
calls ``DeepFace.analyze(path, actions=["age", "gender"], enforce_detection=False)`` (its
default OpenCV detector) on every photo, twice. The first pass is the cold one: the process's
start, DeepFace's and TensorFlow's imports and the loading of both models all fall in it,
because DeepFace builds its models lazily on the first call. The second pass is warm.

Start and end are read on CLOCK_MONOTONIC, which Linux shares between processes, so the
parent can time the cold pass from the moment it launched the child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

PASSES = 2
# ``bench`` is not installed: the child imports it from the repository root.
REPO = Path(__file__).resolve().parents[1]


def run_peer(photos: Sequence[Path], deepface_home: Path, workdir: Path, env: dict[str, str] | None = None) -> dict:
    """Run the DeepFace loop on ``photos`` with the weights under ``deepface_home``; ``env``
    adds settings for that process (e.g. bench.machine.AVX2_EMULATION).

    Returns {"cold": pass, "warm": pass, "import_s", "model_load_s"}, where a pass is
    {"seconds", "images", "faces" (analysed), "detected", "per_image": [...]}; the cold
    pass's seconds run from this process's launch of the child.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    report_path = workdir.resolve() / "peer.json"
    env = {**os.environ, **(env or {}), "DEEPFACE_HOME": str(deepface_home.resolve()), "TF_CPP_MIN_LOG_LEVEL": "2"}
    # The child runs in the repository root (where ``bench`` is importable): absolute paths.
    command = [sys.executable, "-m", "bench.peer", str(report_path), *(str(p.resolve()) for p in photos)]
    launched = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"DeepFace loop failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(report_path.read_text())
    cold, warm = report["passes"]
    cold["seconds"] = cold["ended_at"] - launched
    first_cold, first_warm = cold["per_image"][0]["seconds"], warm["per_image"][0]["seconds"]
    return {
        "cold": cold,
        "warm": warm,
        "interpreter_and_import_s": report["imported_at"] - launched,
        # DeepFace loads both models inside the first analyze call.
        "model_load_s": max(0.0, first_cold - first_warm),
    }


def _analyse(paths: Sequence[str]) -> dict:
    from deepface import DeepFace

    per_image = []
    for path in paths:
        started = time.monotonic()
        faces = DeepFace.analyze(path, actions=["age", "gender"], enforce_detection=False, silent=True)
        # Without a face DeepFace analyses the whole photo as one, with confidence 0.
        per_image.append(
            {
                "path": path,
                "seconds": time.monotonic() - started,
                "faces": len(faces),
                "detected": sum(1 for f in faces if f.get("face_confidence", 0) > 0),
            }
        )
    return {
        "seconds": sum(i["seconds"] for i in per_image),
        "images": len(per_image),
        "faces": sum(i["faces"] for i in per_image),
        "detected": sum(i["detected"] for i in per_image),
        "per_image": per_image,
        "ended_at": time.monotonic(),
    }


def main(argv: Sequence[str]) -> None:
    """Child entry: ``python -m bench.peer REPORT.json PHOTO...``."""
    report_path, paths = Path(argv[0]), list(argv[1:])
    import deepface.DeepFace  # noqa: F401  (timed: the import is part of the cold cost)

    imported_at = time.monotonic()
    passes = [_analyse(paths) for _ in range(PASSES)]
    report_path.write_text(json.dumps({"imported_at": imported_at, "passes": passes}))


if __name__ == "__main__":
    main(sys.argv[1:])
