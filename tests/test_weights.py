"""Model file registry: status of every file, and downloads that are atomic or absent."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
from functools import partial
from pathlib import Path

import pytest

from models import weights
from models.weights import FetchFailed, ModelFile, check_model_files, fetch_missing

REQUIRED = {
    "dlib-shape-predictor-68",
    "dlib-mmod-cnn",
    "opencv-haar-frontalface",
    "deepface-age",
    "deepface-gender",
}


@pytest.fixture
def deepface_home(tmp_path, monkeypatch) -> Path:
    """An empty DEEPFACE_HOME, so the DeepFace files count as missing."""
    home = tmp_path / "home"
    monkeypatch.setenv("DEEPFACE_HOME", str(home))
    return home


@pytest.fixture
def file_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/served; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_check_lists_every_model_file_with_size_hash_and_status(deepface_home):
    folder = deepface_home / ".deepface" / "weights"
    folder.mkdir(parents=True)
    (folder / "age_model_weights.h5").write_bytes(b"age weights")
    files = {f.name: f for f in check_model_files()}
    assert set(files) == REQUIRED | {"opencv-yunet"}
    assert all(isinstance(f, ModelFile) for f in files.values())
    age = files["deepface-age"]
    assert (age.status, age.size, age.path) == ("ok", 11, folder / "age_model_weights.h5")
    assert age.sha256 == hashlib.sha256(b"age weights").hexdigest()
    gender = files["deepface-gender"]
    assert (gender.status, gender.size, gender.sha256) == ("missing", None, None)
    assert files["opencv-yunet"].status == "optional-missing"
    predictor = files["dlib-shape-predictor-68"]
    assert predictor.status == "ok" and predictor.size == predictor.path.stat().st_size > 1_000_000
    assert len(predictor.sha256) == 64
    assert files["opencv-haar-frontalface"].status == "ok"
    assert all(f.sha256 is None for f in check_model_files(with_sha256=False))


def test_fetch_downloads_missing_files_with_progress(deepface_home, file_server):
    folder, base = file_server
    payload = {"age": os.urandom(2_500_000), "gender": os.urandom(1_000)}
    for name, data in payload.items():
        (folder / f"{name}.h5").write_bytes(data)
    events = []
    written = fetch_missing(
        progress=lambda name, done, total: events.append((name, done, total)),
        sources={
            "deepface-age": f"{base}/age.h5",
            # A dead first source: the backup URL after it is used.
            "deepface-gender": [f"{base}/nowhere.h5", f"{base}/gender.h5"],
        },
        pinned={"deepface-age": hashlib.sha256(payload["age"]).hexdigest(),
                "deepface-gender": hashlib.sha256(payload["gender"]).hexdigest()},
    )
    target = deepface_home / ".deepface" / "weights"
    assert written == [target / "age_model_weights.h5", target / "gender_model_weights.h5"]
    assert (target / "age_model_weights.h5").read_bytes() == payload["age"]
    assert (target / "gender_model_weights.h5").read_bytes() == payload["gender"]
    age_events = [e for e in events if e[0] == "deepface-age"]
    assert len(age_events) >= 3  # 2.5 MB arrives in several chunks
    assert [done for _, done, _ in age_events] == sorted(done for _, done, _ in age_events)
    assert age_events[-1] == ("deepface-age", 2_500_000, 2_500_000)
    assert sorted(p.name for p in target.iterdir()) == ["age_model_weights.h5", "gender_model_weights.h5"]
    # Nothing is missing any more, so nothing is fetched.
    assert fetch_missing(sources={"deepface-age": f"{base}/gone.h5"}) == []


def test_a_download_that_does_not_match_its_pinned_sha256_is_refused_and_removed(deepface_home, file_server):
    folder, base = file_server
    (folder / "age.h5").write_bytes(b"not the real age weights")
    with pytest.raises(FetchFailed, match="is not the pinned"):
        fetch_missing(sources={"deepface-age": f"{base}/age.h5"})  # checked against the real sum
    assert list((deepface_home / ".deepface" / "weights").iterdir()) == []


def test_the_real_weights_are_pinned():
    from models import weights

    assert [e.sha256 for e in weights._registry() if e.name.startswith("deepface-")] == [
        weights.AGE_SHA256, weights.GENDER_SHA256]
    assert all(len(s) == 64 for s in (weights.AGE_SHA256, weights.GENDER_SHA256))


def test_unreachable_source_is_a_named_error_and_leaves_no_partial_file(deepface_home):
    url = f"http://127.0.0.1:{_closed_port()}/age.h5"
    with pytest.raises(FetchFailed, match="deepface-age") as info:
        fetch_missing(sources={"deepface-age": url})
    assert url in str(info.value)
    target = deepface_home / ".deepface" / "weights"
    assert list(target.iterdir()) == []


class _ShortBody(http.server.BaseHTTPRequestHandler):
    """Promises 1 MB and hangs up after 1 kB, like a dropped connection."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(1_000_000))
        self.end_headers()
        self.wfile.write(b"x" * 1_000)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_an_interrupted_download_leaves_no_partial_file(deepface_home):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ShortBody)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(FetchFailed, match="1000 of 1000000"):
            fetch_missing(sources={"deepface-age": f"http://127.0.0.1:{server.server_address[1]}/age.h5"})
    finally:
        server.shutdown()
        server.server_close()
    assert list((deepface_home / ".deepface" / "weights").iterdir()) == []


def test_default_sources_are_deepfaces_published_urls():
    import models.tf_runtime  # noqa: F401  (Keras 2 must be chosen before deepface's tf modules)
    from deepface.models.demography.tf import Age, Gender
    from deepface.models.face_detection import YuNet

    assert list(weights.AGE_URLS) == Age.WEIGHTS_URL
    assert list(weights.GENDER_URLS) == Gender.WEIGHTS_URL
    assert weights.YUNET_URLS == (YuNet.WEIGHTS_URL,)
