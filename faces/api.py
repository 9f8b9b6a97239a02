"""The analysis in-process: one photo in, its result document out; no Redis, no workers.

In the manner of InsightFace's ``FaceAnalysis.get`` and face_recognition's ``api.py``: a
``FaceAnalyzer`` loads the models once (the face detector, dlib's 68-point predictor, the
age/gender backend) and analyses photo after photo; ``analyze()`` does the same with an
analyzer made on first use and kept.

The result is the document the pipeline's sink writes (``faces.result/1``,
schemas/result.schema.json), made by the very steps the pipeline's stages run
(models/analysis.py) and by the sink's ``build_result``: for the same photo and options, the
same faces, landmarks, ages and genders, and ``timings_ms`` filled in the same way (the photo
is its own batch, so ``agegender_batch_share`` is the whole network call).

    import faces
    result = faces.analyze("data/group.jpg")      # or the file's bytes, or cv2.imread pixels
    for face in result["faces"]:
        print(face["box"], face["age"], face["gender"]["label"])
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from faces.models.agegender_backends import DEFAULT_CHOICE, LoadedBackend, check_choice, load_backend
from faces.models.analysis import Photo, add_age_gender, add_landmarks, decode_photo, find_faces, photo_of
from faces.models.decode import DEFAULT_MAX_PIXELS
from faces.models.detect import DEFAULT_BACKEND, Detector, load_detector
from faces.models.landmarks import Landmarker, load_landmarker
from faces.producer.files import DEFAULT_MAX_IMAGE_BYTES, job_for, read_job
from faces.schemas.job import Job
from faces.schemas.result import build_result
from faces.settings import ModelSettings, model_settings
from faces.streams.names import STAGE_ORDER

# Encoded bytes (JPEG, PNG, ... as read from a file), a path to an image file, or decoded
# BGR uint8 pixels of shape (height, width, 3), as cv2.imread gives them.
ImageInput = bytes | bytearray | memoryview | str | os.PathLike | np.ndarray

# The pipeline decodes a photo's bytes first in its first stage: an undecodable photo's error
# names that stage here too.
DECODE_STAGE = STAGE_ORDER[0]

__all__ = ["FaceAnalyzer", "ImageInput", "analyze"]


class FaceAnalyzer:
    """The models of the pipeline's three analysis stages, loaded once, for photo after photo.

    ``detector``: a detector backend name (faces.models.detect.BACKENDS; default dlib-hog, as
    `faces run`). ``agegender``: ``auto`` (DeepFace's models when their weights are in
    ``weights_dir`` or DeepFace's home, else the bundled dlib networks), ``deepface`` or
    ``dlib``. ``landmarks``: ``68`` (the default) or ``5`` (dlib's 5 points, free for commercial
    use; no pose). ``min_face_score``: drop detections scoring below it (default per detector).
    ``models``: DeepFace's home, the age/gender precision, YuNet's file, TensorFlow's threads
    (faces.settings.ModelSettings; None: as this process's environment says, read once here).
    ``max_pixels``: larger images get a ``too-large`` error result. ``max_image_bytes``: a file
    named by path and larger than this gets a ``FileTooLarge`` error result, as when submitted.

    Raises what loading raises: UnknownBackend / BackendUnavailable for the detector,
    AgeGenderChoiceError for ``agegender``, LandmarksChoiceError for ``landmarks``. Calls on one analyzer from several threads take
    turns (the dlib models are not meant to be shared mid-call).
    """

    def __init__(
        self,
        *,
        detector: str | None = None,
        agegender: str | None = None,
        min_face_score: float | None = None,
        weights_dir: str | os.PathLike | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        landmarks: str | None = None,
        models: ModelSettings | None = None,
    ) -> None:
        # Explicit arguments only: the options' environment ($FACES_AGEGENDER, ...) is the CLI's
        # business. Where the model files are and how they compute (DeepFace's home, the
        # precision, ...) is read here once, as `faces worker` reads it, unless given.
        self.models = model_settings(models)
        choice = check_choice(agegender or DEFAULT_CHOICE)
        self.detector: Detector = load_detector(
            detector or DEFAULT_BACKEND, models=self.models, min_score=min_face_score
        )
        self.landmarker: Landmarker = load_landmarker(choice=landmarks)
        self.agegender: LoadedBackend = load_backend(
            choice, Path(weights_dir) if weights_dir else None, models=self.models
        )
        self.max_pixels = max_pixels
        self.max_image_bytes = max_image_bytes
        self._lock = threading.Lock()

    def analyze(self, image: ImageInput) -> dict[str, Any]:
        """The result document of one photo (see ``ImageInput`` for what it may be).

        Bytes that are not a usable image give a result with status ``error`` and the
        pipeline's decode codes as ``error.type`` (empty, not-an-image, truncated, corrupt,
        unsupported, too-large), not an exception. A path that cannot be read raises OSError,
        pixels of the wrong shape or type ValueError: mistakes of the caller, not of the photo.
        """
        opened = self._open(image)
        if not isinstance(opened, Photo):  # the photo failed before analysis: nothing to run
            return build_result(opened)
        with self._lock:
            self.run_steps(opened)
        return build_result(opened.job)

    def run_steps(self, photo: Photo) -> None:
        """The pipeline's three analysis steps on one photo, in stage order, filling its job."""
        find_faces(self.detector, [photo])
        add_landmarks(self.landmarker, [photo])
        add_age_gender(self.agegender, [photo])

    def _open(self, image: ImageInput) -> Photo | Job:
        """A photo ready for the steps, or the job already failed (bytes that do not decode, a
        file too large), with a new job as the pipeline's submission would make it."""
        if isinstance(image, np.ndarray):
            pixels = _checked_pixels(image)
            # No file behind them: the job names no path and hashes the pixels themselves.
            return photo_of(job_for("", pixels.tobytes()), pixels)
        if isinstance(image, (str, os.PathLike)):
            # Read as `faces submit` reads a named file: absolute path, links followed.
            read = read_job(os.path.abspath(image), self.max_image_bytes, follow_symlinks=True)
            if read.job["error"] is not None:  # too large to read: failed before decoding
                return read.job
            job, data = read.job, read.data
        elif isinstance(image, (bytes, bytearray, memoryview)):
            data = bytes(image)
            job = job_for("", data)
        else:
            raise TypeError(f"expected image bytes, a path or BGR pixels, got {type(image).__name__}")
        return decode_photo(job, data, DECODE_STAGE, self.max_pixels)


def _checked_pixels(pixels: np.ndarray) -> np.ndarray:
    """`pixels` as the models take them (C-contiguous); ValueError unless BGR uint8 (h, w, 3)."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        raise ValueError(f"expected BGR uint8 pixels of shape (height, width, 3), got {pixels.dtype} {pixels.shape}")
    return np.ascontiguousarray(pixels)


def analyze(
    image: ImageInput,
    *,
    detector: str | None = None,
    agegender: str | None = None,
    min_face_score: float | None = None,
    weights_dir: str | os.PathLike | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    landmarks: str | None = None,
) -> dict[str, Any]:
    """The result document of one photo, by an analyzer with these options made on first use
    and kept (see ``FaceAnalyzer``): the models load once per set of options, not per call."""
    return default_analyzer(
        detector=detector,
        agegender=agegender,
        min_face_score=min_face_score,
        weights_dir=None if weights_dir is None else os.fspath(weights_dir),
        max_pixels=max_pixels,
        landmarks=landmarks,
    ).analyze(image)


@functools.lru_cache(maxsize=4)  # a few option sets at most: each holds its models in memory
def default_analyzer(**options: Any) -> FaceAnalyzer:
    """The kept analyzer for these options (keyword arguments of ``FaceAnalyzer``)."""
    return FaceAnalyzer(**options)
