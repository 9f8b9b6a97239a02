"""Registry of every model file the pipeline reads: where it lives, whether it is there, and
how to fetch the ones that can be downloaded (DeepFace's age and gender weights, YuNet).

dlib's files come inside the face_recognition_models package and the Haar cascade inside
opencv-python, so only a broken install makes them missing. DeepFace's files live under
``$DEEPFACE_HOME/.deepface/weights`` (home directory when unset), as DeepFace itself expects.
This module never imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import face_recognition_models
from deepface.commons.folder_utils import get_deepface_home

AGE_FILE = "age_model_weights.h5"
GENDER_FILE = "gender_model_weights.h5"
YUNET_FILE = "face_detection_yunet_2023mar.onnx"

# Copied from deepface.models.demography.tf.Age / .Gender and face_detection.YuNet, whose
# import would load TensorFlow; tests/test_weights.py checks they still match deepface's.
AGE_URLS = (
    "https://github.com/serengil/deepface_models/releases/download/v1.0/age_model_weights.h5",
    "https://huggingface.co/serengil/deepface/resolve/main/age_model_weights.h5",
)
GENDER_URLS = (
    "https://github.com/serengil/deepface_models/releases/download/v1.0/gender_model_weights.h5",
    "https://huggingface.co/serengil/deepface/resolve/main/gender_model_weights.h5",
)
# sha256 of the two files as DeepFace's author listed them in deepface's own source (a hash
# check once kept in deepface/commons/functions.py). They could not be re-checked against a
# download here (no internet on the machines this was built on); a download that does not
# match is refused and removed.
AGE_SHA256 = "0aeff75734bfe794113756d2bfd0ac823d51e9422c8961125b570871d3c2b114"
GENDER_SHA256 = "45513ce5678549112d25ab85b1926fb65986507d49c674a3d04b2ba70dba2eb5"
YUNET_URLS = (
    "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
    "face_detection_yunet_2023mar.onnx",
)

_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 30

Progress = Callable[[str, int, "int | None"], None]


class WeightsMissing(FileNotFoundError):
    """A model weight file the pipeline needs is not on disk.

    Cause: DeepFace's age/gender weights are downloaded separately and this machine does
    not have them (or $DEEPFACE_HOME points elsewhere). Remedy: run `faces models fetch`,
    or copy the file to the path in the message.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        super().__init__(
            f"model weights {self.path} are missing; run `faces models fetch` to download them"
        )


class WeightsUnreadable(ValueError):
    """A weight file exists but is not a DeepFace age/gender HDF5 file.

    Cause: an interrupted copy, a file from another model, or disk damage. Remedy: delete
    the file named in the message and run `faces models fetch` again.
    """

    def __init__(self, path: Path, detail: str) -> None:
        self.path = Path(path)
        super().__init__(
            f"model weights {self.path} cannot be used: {detail}; delete it and run `faces models fetch`"
        )


class FetchFailed(RuntimeError):
    """No source could deliver a model file.

    Cause: no network, a proxy, or the sources moved. Remedy: check the connection, or
    download the file by hand from one of the URLs in the message to the path it names.
    """

    def __init__(self, name: str, path: Path, errors: list[str]) -> None:
        self.name, self.path, self.errors = name, path, errors
        super().__init__(f"could not download {name} to {path}: " + "; ".join(errors))


@dataclass(frozen=True)
class ModelFile:
    """One registry entry as found on disk.

    ``status`` is "ok", "missing" (a required file is absent) or "optional-missing";
    ``size`` and ``sha256`` are None when the file is absent (or hashing was skipped).
    """

    name: str
    path: Path
    size: int | None
    sha256: str | None
    status: str


@dataclass(frozen=True)
class _Entry:
    name: str
    path: Path
    required: bool
    urls: tuple[str, ...]
    sha256: str | None = None  # pinned: a download must hash to this


def deepface_weights_dir() -> Path:
    """``$DEEPFACE_HOME/.deepface/weights``, resolved the way DeepFace resolves it."""
    return Path(get_deepface_home()) / ".deepface" / "weights"


def age_weights_path() -> Path:
    return deepface_weights_dir() / AGE_FILE


def gender_weights_path() -> Path:
    return deepface_weights_dir() / GENDER_FILE


def yunet_path() -> Path:
    """Where DeepFace keeps YuNet's ONNX file; opencv-yunet looks there by default."""
    return deepface_weights_dir() / YUNET_FILE


def _registry() -> list[_Entry]:
    # Built on each call: DEEPFACE_HOME may change between calls (tests, CLI options).
    haar = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    return [
        _Entry("dlib-shape-predictor-68", Path(face_recognition_models.pose_predictor_model_location()), True, ()),
        _Entry("dlib-mmod-cnn", Path(face_recognition_models.cnn_face_detector_model_location()), True, ()),
        _Entry("opencv-haar-frontalface", haar, True, ()),
        _Entry("deepface-age", age_weights_path(), True, AGE_URLS, AGE_SHA256),
        _Entry("deepface-gender", gender_weights_path(), True, GENDER_URLS, GENDER_SHA256),
        _Entry("opencv-yunet", yunet_path(), False, YUNET_URLS),
    ]


def check_model_files(with_sha256: bool = True) -> list[ModelFile]:
    """Describe every registered model file: path, size, sha256 (when hashed) and status."""
    files = []
    for entry in _registry():
        if entry.path.is_file():
            digest = _sha256(entry.path) if with_sha256 else None
            files.append(ModelFile(entry.name, entry.path, entry.path.stat().st_size, digest, "ok"))
        else:
            status = "missing" if entry.required else "optional-missing"
            files.append(ModelFile(entry.name, entry.path, None, None, status))
    return files


def fetch_missing(
    progress: Progress | None = None,
    sources: dict[str, str | list[str]] | None = None,
    include_optional: bool = False,
    pinned: dict[str, str] | None = None,
) -> list[Path]:
    """Download every missing downloadable file; return the paths written.

    ``progress(name, bytes_done, total_or_None)`` is called as bytes arrive. ``sources``
    overrides the URLs per registry name (e.g. {"deepface-age": "http://mirror/age.h5"});
    ``pinned`` overrides the sha256 a download must have (tests serve synthetic weights).
    Each file is written to a temporary name beside its target and renamed into place only
    when complete, so an interrupted download never leaves a half file under the real name.
    Raises ``FetchFailed`` when every source of a file fails.
    """
    sources = sources or {}
    pinned = pinned or {}
    written = []
    for entry in _registry():
        if entry.path.is_file() or not (entry.required or include_optional):
            continue
        urls = sources.get(entry.name, entry.urls)
        urls = (urls,) if isinstance(urls, str) else tuple(urls)
        if not urls:
            continue
        _download_first(entry.name, urls, entry.path, progress, pinned.get(entry.name, entry.sha256))
        written.append(entry.path)
    return written


def _download_first(name: str, urls: tuple[str, ...], target: Path, progress: Progress | None,
                    sha256: str | None) -> None:
    """Try ``urls`` in order, the next one being a backup for the previous."""
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        try:
            _download(name, url, target, progress, sha256)
            return
        except (OSError, ValueError, http.client.HTTPException) as err:
            errors.append(f"{url}: {err}")
    raise FetchFailed(name, target, errors)


def _download(name: str, url: str, target: Path, progress: Progress | None, sha256: str | None) -> None:
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            digest = hashlib.sha256()
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(name, done, total)
            if total is not None and done != total:
                raise OSError(f"connection closed after {done} of {total} bytes")
            if sha256 is not None and digest.hexdigest() != sha256:
                raise ValueError(f"sha256 {digest.hexdigest()} is not the pinned {sha256}; "
                                 "file refused and removed")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
