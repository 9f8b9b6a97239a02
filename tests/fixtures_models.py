"""Fixtures for the analysis models: test photos, loaded models, synthetic DeepFace weights.

Everything expensive is session-scoped: the DeepFace weight sets (about 1 GB each) are
written once per test session, the detector and landmarker loaded once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.annotations import DETECTION_FILES, LANDMARK_FILES, AnnotatedImage, read_annotations

DLIB_FACES_DIR = Path(__file__).resolve().parents[2] / "shared/testdata/dlib-faces"


@pytest.fixture(scope="session")
def dlib_faces_dir() -> Path:
    """The dlib-faces test photos beside the repo (../shared); skips when absent."""
    if not (DLIB_FACES_DIR / "training.xml").is_file():
        pytest.skip(f"test photos not found: {DLIB_FACES_DIR} (the ../shared folder beside the repo)")
    return DLIB_FACES_DIR


@pytest.fixture(scope="session")
def annotated_images(dlib_faces_dir: Path) -> list[AnnotatedImage]:
    """The 9 photos of training.xml + testing.xml with their 43 hand-drawn face boxes."""
    return read_annotations(dlib_faces_dir, DETECTION_FILES)


@pytest.fixture(scope="session")
def landmark_images(dlib_faces_dir: Path) -> list[AnnotatedImage]:
    """The same photos and boxes with the 68 points dlib's predictor placed in each box."""
    return read_annotations(dlib_faces_dir, LANDMARK_FILES)


@pytest.fixture(scope="session")
def decoded_photos(annotated_images: list[AnnotatedImage]) -> dict[str, np.ndarray]:
    """BGR pixels of every annotated photo, keyed by file name, decoded once."""
    from faces.models.decode import decode_image

    return {image.path.name: decode_image(image.path.read_bytes()).pixels for image in annotated_images}


@pytest.fixture(scope="session")
def default_detector():
    from faces.models.detect import load_detector

    return load_detector()


@pytest.fixture(scope="session")
def landmarker():
    from faces.models.landmarks import load_landmarker

    return load_landmarker()


SYNTHETIC_HOMES = "deepface-home-*"  # under the run's temp root; removed at the session's end


def _synthetic_home(tmp_path_factory: pytest.TempPathFactory, shared_trunk: bool) -> Iterator[Path]:
    """Written once per run, whatever the number of xdist workers: each worker used to write its
    own 1 GB (about 20 s each, three times in `make test`). The first worker to get the lock
    writes it; the others wait for it and read the same files (seed 7: the same values, and
    every test only reads them)."""
    from bench.synthetic import write_synthetic_weights

    home = _run_root(tmp_path_factory) / ("deepface-home-shared" if shared_trunk else "deepface-home-separate")
    written = home / "written"
    with _locked(home.with_suffix(".lock")):
        if not written.exists():
            shutil.rmtree(home, ignore_errors=True)
            write_synthetic_weights(home / ".deepface" / "weights", shared_trunk=shared_trunk, seed=7)
            written.touch()
    yield home


def _run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This run's temp folder, shared by its xdist workers (each worker's own is a folder in it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def remove_synthetic_homes(config: pytest.Config) -> None:
    """At the end of the run (in the controller, once every worker is done): pytest keeps the last
    three runs' temp folders, and 1 GB of weights each is not worth keeping."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        return
    for home in factory.getbasetemp().glob(SYNTHETIC_HOMES):
        shutil.rmtree(home, ignore_errors=True) if home.is_dir() else home.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def synthetic_deepface_home_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A DEEPFACE_HOME whose age and gender weights share one VGG-Face trunk (random values)."""
    yield from _synthetic_home(tmp_path_factory, shared_trunk=True)


@pytest.fixture(scope="session")
def synthetic_deepface_home_separate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A DEEPFACE_HOME whose age and gender weights have different trunks (random values)."""
    yield from _synthetic_home(tmp_path_factory, shared_trunk=False)


def write_broken_deepface_weights(home: Path) -> None:
    """DeepFace weight files that are not HDF5: `auto` tries them, cannot read them (before
    any engine loads) and falls back to the bundled networks."""
    weights = home / ".deepface" / "weights"
    weights.mkdir(parents=True)
    for name in ("age_model_weights.h5", "gender_model_weights.h5"):
        (weights / name).write_bytes(b"\0" * 1000)
