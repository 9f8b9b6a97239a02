"""The analysis of a photo as three steps, each adding its part to the photo's job: faces (the
detect step), 68 points with head pose and quality (landmarks), age and gender (agegender).

The pipeline's stage adapters (consumers/) run one step each, on their own batch; the
in-process API (faces/api.py) runs the three on one photo. Both call these functions, so a
photo gets the same result whichever way it went.

Each step adds its milliseconds to the job's timings_ms: under the stage's name where the work
is done image by image, and as a named share (STAGE + BATCH_SHARE, split by faces) where one
call serves the whole batch (the age/gender networks). Decoding is not timed.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from faces.models import regions
from faces.models.decode import DEFAULT_MAX_PIXELS, ImageDecodeError, ImageTooLarge, decode_image
from faces.models.detect import Box
from faces.schemas import events
from faces.schemas.job import Face, Job
from faces.schemas.result import BATCH_SHARE

if TYPE_CHECKING:  # the detect worker must not import the age/gender models (DeepFace)
    from faces.models.agegender import AgeGender
    from faces.models.agegender_backends import AgeGenderBackend, LoadedBackend
    from faces.models.detect import Detection, Detector
    from faces.models.landmarks import Landmarker


@dataclass(frozen=True)
class Photo:
    """One image under analysis: its job, which each step fills in, and its BGR uint8 pixels."""

    job: Job
    pixels: np.ndarray


def decode_photo(job: Job, data: bytes, stage: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo | Job:
    """The image bytes of `job`, decoded for `stage`: a Photo holding a copy of the job with the
    image's width and height; or, when the bytes are not a usable image, the job failed at
    `stage` with the decode error's reason (empty, not-an-image, truncated, ...) as its type."""
    try:
        image = decode_image(data, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        return events.with_error(job, stage, exc.reason, str(exc))
    return photo_of(job, image.pixels)


def photo_of_regions(job: Job, packed: bytes, stage: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo | Job:
    """The pixels the detect step kept for `job` (models/regions.py), put back at their places
    in a photo-sized canvas: a Photo as `decode_photo` gives, without decoding the photo again;
    the job failed at `stage` when the photo is over `max_pixels` (this stage's limit)."""
    pixels = regions.unpack(packed)
    height, width = pixels.shape[:2]
    if width * height > max_pixels:
        exc = ImageTooLarge(width, height, max_pixels)
        return events.with_error(job, stage, exc.reason, str(exc))
    return photo_of(job, pixels)


def kept_regions(photo: Photo) -> bytes | None:
    """What the detect step keeps of a photo for the later steps: the regions around its faces
    (models/regions.py `pack`), or None when they are over the bound (then they decode)."""
    return regions.pack(photo.pixels, [face["box"] for face in photo.job["faces"]])


def photo_of(job: Job, pixels: np.ndarray) -> Photo:
    """A Photo of decoded `pixels`, with a copy of `job` (the caller's stays as it was) that
    records the image's width and height."""
    job = copy.deepcopy(job)
    job["image"]["height"], job["image"]["width"] = pixels.shape[:2]
    return Photo(job, pixels)


def find_faces(detector: Detector, photos: Sequence[Photo]) -> None:
    """Detect step: each job's faces become the boxes found, with their scores."""
    for photo in photos:
        # One image per call: detectors work image by image anyway, and so each image's
        # timing is its own, not a share of its batch's.
        with timed(photo.job, "detect"):
            [detections] = detector.detect([photo.pixels])
        photo.job["faces"] = [_face_of(detection) for detection in detections]
        photo.job["models"]["detector"] = detector.name


def _face_of(detection: Detection) -> Face:
    box = detection.box
    return {"box": {"x": box.x, "y": box.y, "w": box.w, "h": box.h}, "score": round(float(detection.score), 4)}


def add_landmarks(landmarker: Landmarker, photos: Sequence[Photo]) -> None:
    """Landmarks step: each face of each job gets its points (68, or 5 with `--landmarks 5`),
    head pose (null with 5 points: the job's notes say why) and crop quality."""
    for photo in photos:
        faces = photo.job["faces"]
        with timed(photo.job, "landmarks"):
            located = landmarker.locate(photo.pixels, [Box(**face["box"]) for face in faces])
        for face, marks in zip(faces, located):
            face.update(marks.fields())
        landmarker.describe(photo.job)


def add_age_gender(loaded: LoadedBackend, photos: Sequence[Photo]) -> None:
    """Age/gender step: every face of every photo predicted in one call per network, and each
    job told which model ran. When DeepFace was required and cannot run (`loaded.backend` is
    None), ages and genders stay null and the job's note says why."""
    if loaded.backend is not None:
        _predict_faces(loaded.backend, photos)
    for photo in photos:
        photo.job["models"]["agegender"] = loaded.backend.name if loaded.backend is not None else None
        if loaded.note:  # DeepFace cannot run, or its weights are broken: the note says why
            photo.job["notes"]["agegender"] = loaded.note
        else:
            photo.job["notes"].pop("agegender", None)


def _predict_faces(backend: AgeGenderBackend, photos: Sequence[Photo]) -> None:
    """Every face's age and gender; the chips timed per photo, the networks' one call shared."""
    chips, owners = [], []
    for photo in photos:  # cutting the faces out is per image: timed per image
        with timed(photo.job, "agegender"):
            chips.extend(backend.chips(photo.pixels, photo.job["faces"]))
        owners.extend(photo.job["faces"])
    # One network run for every face of the batch: each image gets its faces' share.
    with timed_shared([photo.job for photo in photos], [len(photo.job["faces"]) for photo in photos], "agegender"):
        predictions = backend.predict(chips)
    for face, prediction in zip(owners, predictions):
        face.update(_age_gender_fields(prediction))


def _age_gender_fields(prediction: AgeGender) -> Face:
    low, high = prediction.age_range
    return {
        "age": round(float(prediction.age), 2),
        "age_range": [round(float(low), 2), round(float(high), 2)],
        "gender": {
            "label": prediction.gender_label,
            "confidence": round(float(prediction.gender_confidence), 4),
            "scores": {k: round(float(v), 4) for k, v in prediction.gender_scores.items()},
        },
    }


@contextmanager
def timed(job: Job, key: str) -> Iterator[None]:
    """Add the milliseconds the block takes to job's timings_ms[key]: work done for this image
    alone, so measured for it alone."""
    started = time.perf_counter()
    yield
    _add_ms(job, key, (time.perf_counter() - started) * 1000)


@contextmanager
def timed_shared(jobs: Sequence[Job], weights: Sequence[int], stage: str) -> Iterator[None]:
    """Time one call made for the whole batch (a network run over every face at once, which
    cannot be timed per image) and give each job its share, in proportion to its weight (its
    faces), under timings_ms[stage + "_batch_share"]: the name says it is a share, not a
    measurement. With no weight at all, the jobs share equally."""
    started = time.perf_counter()
    yield
    elapsed_ms = (time.perf_counter() - started) * 1000
    total = sum(weights)
    for job, weight in zip(jobs, weights):
        share = weight / total if total else 1 / len(jobs)
        _add_ms(job, stage + BATCH_SHARE, elapsed_ms * share)


def _add_ms(job: Job, key: str, ms: float) -> None:
    job["timings_ms"][key] = round(job["timings_ms"].get(key, 0.0) + ms, 2)
