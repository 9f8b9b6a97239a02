"""The best plain program: the library (``faces.FaceAnalyzer``) in one process per core, no Redis.

What someone would write without the pipeline: a multiprocessing pool whose processes each load
the models once (and analyse one photo to warm up), then share out the photos. Images per
second over the photos after that warm-up is the bar the pipeline's steady state is held to.
Each process gets one thread for TensorFlow and OpenCV, so the processes, not threads, fill the cores.

With recognition on, each process also computes every face's descriptor after the analysis, with
the embed stage's own model code (bench/embedding.py), on the pixels it decoded once.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Sequence
from pathlib import Path

_analyzer = None
_embedder = None  # recognition on: dlib's ResNet descriptor, loaded beside the analyzer


def _load(backend: str, weights_dir: str | None, warmup: str, recognition: bool) -> None:
    global _analyzer, _embedder
    os.environ.setdefault("FACES_TF_THREADS", "1")  # before TensorFlow loads: one process per core
    import cv2

    # OpenCV too (the opencv-float32 age/gender engine `auto` picks on AVX2-only CPUs, and the
    # detectors): its pool would otherwise start a thread per core in every process.
    cv2.setNumThreads(1)
    from faces import FaceAnalyzer

    _analyzer = FaceAnalyzer(agegender=backend, weights_dir=weights_dir)
    if recognition:
        from faces.models.embed import load_embedder

        _embedder = load_embedder()
    _faces_in(warmup)
    _faces_in(warmup)


def _ready(_index: int) -> int:
    time.sleep(0.3)  # long enough that every process takes one: all have loaded when map returns
    return os.getpid()


def _faces_in(path: str) -> int:
    assert _analyzer is not None, "the pool initializer loads the analyzer first"
    if _embedder is None:
        result = _analyzer.analyze(path)
        return len(result["faces"]) if result["status"] == "ok" else -1
    return _recognised_faces_in(path)


def _recognised_faces_in(path: str) -> int:
    """analyze()'s work on a photo read and decoded once, then each face's descriptor."""
    from bench.embedding import describe_photos
    from faces.api import DECODE_STAGE
    from faces.models.analysis import Photo, decode_photo
    from faces.producer.files import read_job
    from faces.schemas.result import build_result

    assert _analyzer is not None and _embedder is not None
    read = read_job(os.path.abspath(path), follow_symlinks=True)  # as analyze() reads a path
    photo = decode_photo(read.job, read.data, DECODE_STAGE)
    if not isinstance(photo, Photo):
        return -1
    _analyzer.run_steps(photo)
    result = build_result(photo.job)
    describe_photos(_embedder, [photo])
    return len(result["faces"]) if result["status"] == "ok" else -1


def best_plain(
    paths: Sequence[Path], backend: str, weights_dir: Path | None, processes: int, recognition: bool = False
) -> dict:
    """Images/s of ``processes`` library processes over ``paths``, after every process has
    loaded its models and analysed one photo. Fresh processes (spawn), as a program starts.
    ``recognition``: each face's descriptor too (see the module docstring)."""
    context = multiprocessing.get_context("spawn")
    started = time.monotonic()
    with context.Pool(
        processes,
        initializer=_load,
        initargs=(backend, str(weights_dir) if weights_dir else None, str(paths[0]), recognition),
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
        "recognition": recognition,
        "processes": processes,
        "images": len(paths),
        "faces": sum(faces),
        "load_s": load_s,
        "seconds": seconds,
        "images_per_s": len(paths) / seconds,
    }
