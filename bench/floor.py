"""The CPU floor: each stage's own CPU seconds per image, in this process, no Redis.

Every step the pipeline runs on a photo (decode, detect, landmarks, age/gender with each
backend, and the sink's result JSON and annotated picture) is timed on the same photos with
``timed_with_cpu`` (CPU of every thread of this process). Their sum is what one image costs in
CPU, whoever runs it; the cores divided by it are the most images per second any arrangement
of these models could do here. Decode counts once: the pipeline's stages each decode again,
and that, like the transport, is cost above the floor.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.stages import timed_with_cpu
from faces.models.analysis import add_age_gender, add_landmarks, decode_photo, find_faces
from faces.producer.files import job_for
from faces.schemas.result import build_result, dumps

STEPS = ("decode", "detect", "landmarks")  # before age/gender; the sink comes after it
RECOGNITION = "+recognition"  # a setup's name with recognition on: its backend's name and this


def recognition_setup(backend: str) -> str:
    """The name of ``backend``'s setup with recognition on (floor, plain program, steady state)."""
    return backend + RECOGNITION


def cpu_floor(
    photos: Sequence[Path], backends: dict, cores: int, batch: int, repeat: int, recognising: Sequence[str] = ()
) -> dict:
    """CPU seconds per image of each step on ``photos``, and per age/gender backend
    (``backends``: name -> LoadedBackend) the sum and the floor in images/s over ``cores``.
    Age/gender runs in groups of ``batch`` photos, as its worker does. Each backend in
    ``recognising`` also gets a floor with the embed step (see the module docstring)."""
    from faces.models.detect import load_detector
    from faces.models.landmarks import load_landmarker

    inputs = [(job_for(str(p), p.read_bytes()), p.read_bytes()) for p in photos]
    detector, landmarker = load_detector(), load_landmarker()
    n = len(inputs)

    def decoded():
        return [decode_photo(job, data, "detect") for job, data in inputs]

    ready = decoded()
    find_faces(detector, ready[:1])  # warm-up
    cpu = {
        "decode": timed_with_cpu(decoded, repeat)[1] / n,
        "detect": timed_with_cpu(lambda: find_faces(detector, ready), repeat)[1] / n,
    }
    add_landmarks(landmarker, ready[:1])
    cpu["landmarks"] = timed_with_cpu(lambda: add_landmarks(landmarker, ready), repeat)[1] / n
    groups = [ready[i : i + batch] for i in range(0, n, batch)]
    agegender = {}
    for name, loaded in backends.items():
        # One untimed pass over the same groups: Keras traces its predict function again for
        # each new batch shape, a one-off cost a running worker has long paid.
        _age_gender_all(loaded, groups)
        agegender[name] = timed_with_cpu(functools.partial(_age_gender_all, loaded, groups), repeat)[1] / n
    with tempfile.TemporaryDirectory(prefix="faces-bench-sink-") as folder:
        cpu["sink"] = timed_with_cpu(lambda: _sink(ready, inputs, Path(folder)), repeat)[1] / n
    embed_cpu = _embed_cpu(groups, repeat) / n if recognising else None
    floor = {}
    for name, ag_cpu in agegender.items():
        total = sum(cpu.values()) + ag_cpu
        floor[name] = {"agegender_cpu_s": ag_cpu, "total_cpu_s": total, "images_per_s": cores / total}
        if name in recognising and embed_cpu is not None:
            with_embed = total + embed_cpu
            floor[recognition_setup(name)] = {
                "agegender_cpu_s": ag_cpu,
                "embed_cpu_s": embed_cpu,
                "total_cpu_s": with_embed,
                "images_per_s": cores / with_embed,
                "recognition": True,
            }
    return {
        "images": n,
        "faces": sum(len(p.job["faces"]) for p in ready),
        "cores": cores,
        "batch": batch,
        "step_cpu_s": cpu,
        "embed_cpu_s": embed_cpu,
        "backends": floor,
    }


def _embed_cpu(groups: list, repeat: int) -> float:
    """CPU seconds of the embed step over every group (chips and descriptors), after one
    untimed pass (dlib's network allocates its buffers on first use)."""
    from bench.embedding import describe_photos
    from faces.models.embed import load_embedder

    embedder = load_embedder()
    describe_photos(embedder, groups[0])
    return timed_with_cpu(lambda: [describe_photos(embedder, group) for group in groups], repeat)[1]


def _age_gender_all(backend, groups: list) -> None:
    for group in groups:
        add_age_gender(backend, group)


def _sink(photos, inputs, folder: Path) -> None:
    """The sink's work per image: the result document, its JSON file, the annotated picture
    (which decodes the photo's bytes again, as the sink does)."""
    from faces.consumers.pictures import write_picture

    for photo, (_job, data) in zip(photos, inputs):
        result = build_result(photo.job)
        (folder / f"{result['image_id']}.json").write_text(dumps(result))
        write_picture(folder, result, data)
