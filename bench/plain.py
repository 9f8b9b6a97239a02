"""The best plain program: the library (``faces.FaceAnalyzer``) in one process per core, no Redis.

What someone would write without the pipeline: a multiprocessing pool whose processes each load
the models once (and analyse one photo to warm up), then share out the photos. Images per
second over the photos after that warm-up is the bar the pipeline's steady state is held to.
Each process gets one thread for TensorFlow and OpenCV, so the processes, not threads, fill the cores.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Sequence
from pathlib import Path

_analyzer = None


def _load(backend: str, weights_dir: str | None, warmup: str) -> None:
    global _analyzer
    os.environ.setdefault("FACES_TF_THREADS", "1")  # before TensorFlow loads: one process per core
    import cv2

    # OpenCV too (the opencv-float32 age/gender engine `auto` picks on AVX2-only CPUs, and the
    # detectors): its pool would otherwise start a thread per core in every process.
    cv2.setNumThreads(1)
    from faces import FaceAnalyzer

    _analyzer = FaceAnalyzer(agegender=backend, weights_dir=weights_dir)
    _analyzer.analyze(warmup)
    _analyzer.analyze(warmup)


def _ready(_index: int) -> int:
    time.sleep(0.3)  # long enough that every process takes one: all have loaded when map returns
    return os.getpid()


def _faces_in(path: str) -> int:
    assert _analyzer is not None, "the pool initializer loads the analyzer first"
    result = _analyzer.analyze(path)
    return len(result["faces"]) if result["status"] == "ok" else -1


def best_plain(paths: Sequence[Path], backend: str, weights_dir: Path | None, processes: int) -> dict:
    """Images/s of ``processes`` library processes over ``paths``, after every process has
    loaded its models and analysed one photo. Fresh processes (spawn), as a program starts."""
    context = multiprocessing.get_context("spawn")
    started = time.monotonic()
    with context.Pool(
        processes, initializer=_load, initargs=(backend, str(weights_dir) if weights_dir else None, str(paths[0]))
    ) as pool:
        # A pool starts its processes at once but they load in their own time: wait until
        # every one has answered (a task goes only to a process whose initializer finished).
        while len(set(pool.map(_ready, range(processes), chunksize=1))) < processes:
            pass
        load_s = time.monotonic() - started
        began = time.monotonic()
        faces = pool.map(_faces_in, [str(p) for p in paths], chunksize=1)
        seconds = time.monotonic() - began
    if min(faces) < 0:
        raise RuntimeError(f"plain program ({backend}): {sum(f < 0 for f in faces)} error results")
    return {
        "backend": backend,
        "processes": processes,
        "images": len(paths),
        "faces": sum(faces),
        "load_s": load_s,
        "seconds": seconds,
        "images_per_s": len(paths) / seconds,
    }
