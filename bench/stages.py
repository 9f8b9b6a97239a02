"""Each stage alone: its pure ``faces.models`` function on decoded photos, in this process, no Redis.

These are the compute floors the pipeline is judged against: end to end can never beat its
busiest stage, and what it spends beyond that is the backbone's overhead. Every model gets
one untimed warm-up call first (TensorFlow builds its graph functions on the first call).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faces.models.agegender import INPUT_SIZE, crop_face
from faces.models.decode import decode_image
from faces.models.detect import Box, Detector
from faces.models.landmarks import Landmarker


@dataclass(frozen=True)
class Photo:
    """One benchmark photo: its file, its bytes and its decoded BGR pixels."""

    path: Path
    data: bytes
    pixels: np.ndarray


@dataclass
class Faces:
    """What detection and landmarks found, per photo: the inputs of the age/gender stage."""

    boxes: list[list[Box]]
    points: list[list[tuple[tuple[float, float], ...]]]

    @property
    def count(self) -> int:
        return sum(len(b) for b in self.boxes)


def load_photos(paths: Sequence[Path]) -> list[Photo]:
    """Read and decode every photo once; the stages below all start from these pixels."""
    return [Photo(p, p.read_bytes(), decode_image(p.read_bytes()).pixels) for p in paths]


def timed(action: Callable[[], object], repeat: int) -> float:
    """Median wall seconds of ``repeat`` runs of ``action`` (after the caller's warm-up)."""
    return timed_with_cpu(action, repeat)[0]


def timed_with_cpu(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the run of ``action`` with the median wall time. CPU counts
    every thread of this process: wall well above CPU / cores means threads sat waiting."""
    runs = []
    for _ in range(max(1, repeat)):
        started, cpu = time.perf_counter(), time.process_time()
        action()
        runs.append((time.perf_counter() - started, time.process_time() - cpu))
    return sorted(runs)[len(runs) // 2]


def time_decode(photos: Sequence[Photo], repeat: int) -> float:
    """Seconds to decode every photo once: each image stage pays this again for its batch."""
    return timed(lambda: [decode_image(p.data) for p in photos], repeat)


def time_detect(detector: Detector, photos: Sequence[Photo], repeat: int) -> tuple[float, list[list[Box]]]:
    """Seconds to detect faces in every photo, and the boxes found."""
    boxes: list[list[Box]] = []

    def run() -> None:
        boxes[:] = [[d.box for d in found] for found in detector.detect([p.pixels for p in photos])]

    detector.detect([photos[0].pixels])  # warm-up
    return timed(run, repeat), boxes


def time_landmarks(
    landmarker: Landmarker, photos: Sequence[Photo], boxes: list[list[Box]], repeat: int
) -> tuple[float, Faces]:
    """Seconds to place 68 points (and pose, quality) in every box, and the faces with points."""
    points: list = []

    def run() -> None:
        points[:] = [[face.points for face in landmarker.locate(p.pixels, b)] for p, b in zip(photos, boxes)]

    run()  # warm-up
    return timed(run, repeat), Faces(boxes=boxes, points=points)


def crops_of(photos: Sequence[Photo], faces: Faces, indices: Sequence[int]) -> np.ndarray:
    """The network inputs of every face of the photos at ``indices``, as the adapter builds them."""
    crops = [
        crop_face(photos[i].pixels, box, pts) for i in indices for box, pts in zip(faces.boxes[i], faces.points[i])
    ]
    return np.stack(crops) if crops else np.zeros((0, *INPUT_SIZE, 3), np.float32)


def time_agegender_stage(model, photos: Sequence[Photo], faces: Faces, images_per_call: int, repeat: int) -> dict:
    """The age/gender stage's compute as its worker does it: photos in groups of
    ``images_per_call`` (the worker's batch), every face of a group cropped, then one predict.
    Returns seconds for cropping, for predicting, and both."""
    groups = [range(i, min(i + images_per_call, len(photos))) for i in range(0, len(photos), images_per_call)]
    warm_up(model)
    crop_s = timed(lambda: [crops_of(photos, faces, g) for g in groups], repeat)
    inputs = [crops_of(photos, faces, g) for g in groups]
    predict_s, predict_cpu_s = timed_with_cpu(lambda: [model.predict(c) for c in inputs if len(c)], repeat)
    return {
        "crop_s": crop_s,
        "predict_s": predict_s,
        "predict_cpu_s": predict_cpu_s,
        "seconds": crop_s + predict_s,
        "calls": sum(1 for c in inputs if len(c)),
        "images_per_call": images_per_call,
    }


def warm_up(model) -> None:
    """Untimed calls at three batch sizes: Keras traces its predict function again for each
    new input shape until, after a few, it traces one that accepts any batch size."""
    for size in (1, 2, 3):
        model.predict(np.zeros((size, *INPUT_SIZE, 3), np.float32))


def output_difference(model, reference, crops: np.ndarray) -> dict:
    """How far ``model``'s answers are from ``reference``'s on the same crops: the largest
    change of any probability, of the age in years, and how many genders flip."""
    age, gender = model.predict_probabilities(crops)
    ref_age, ref_gender = reference.predict_probabilities(crops)
    years = np.arange(age.shape[1])
    return {
        "faces": len(crops),
        "max_age_probability": float(np.abs(age - ref_age).max()),
        "max_gender_probability": float(np.abs(gender - ref_gender).max()),
        "max_age_years": float(np.abs(age @ years - ref_age @ years).max()),
        "gender_flips": int((gender.argmax(1) != ref_gender.argmax(1)).sum()),
    }


def time_predict_calls(model, crops: np.ndarray, faces_per_call: int, repeat: int) -> dict:
    """Wall and CPU seconds to predict every crop in calls of ``faces_per_call`` faces
    (1: one at a time)."""
    warm_up(model)
    calls = [crops[i : i + faces_per_call] for i in range(0, len(crops), faces_per_call)]
    seconds, cpu_s = timed_with_cpu(lambda: [model.predict(c) for c in calls], repeat)
    return {"seconds": seconds, "cpu_s": cpu_s, "faces_per_call": faces_per_call}


def time_bundled(photos: Sequence[Photo], faces: Faces, repeat: int) -> dict:
    """The bundled dlib networks (onnxruntime) on the same faces: cutting their chips (5-point
    landmarks and two aligned crops per face), then predicting all faces in one call and one
    face per call. Wall and CPU seconds."""
    from faces.models.agegender_bundled import BundledAgeGender, rgb_of

    model = BundledAgeGender()

    def all_chips() -> list:
        return [model.chips(rgb_of(photo.pixels), box) for photo, boxes in zip(photos, faces.boxes) for box in boxes]

    chips = all_chips()
    model.predict(chips[:1])  # warm-up: onnxruntime allocates on the first call
    chips_s, chips_cpu_s = timed_with_cpu(all_chips, repeat)
    together_s, together_cpu_s = timed_with_cpu(lambda: model.predict(chips), repeat)
    alone_s, alone_cpu_s = timed_with_cpu(lambda: [model.predict([c]) for c in chips], repeat)
    return {
        "name": model.name,
        "faces": len(chips),
        "chips_s": chips_s,
        "chips_cpu_s": chips_cpu_s,
        "all": {"seconds": together_s, "cpu_s": together_cpu_s},
        "one": {"seconds": alone_s, "cpu_s": alone_cpu_s},
    }
