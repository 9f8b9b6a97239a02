"""Model file registry: status of every file (sha256 against the pinned sums, cached), downloads
that resume and are installed only when whole and verified, copies installed by hand, and the
age/gender backend `--agegender auto` picks."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from functools import partial
from pathlib import Path

import pytest

from faces.models import weights
from faces.models.weights import (
    ChecksumMismatch,
    FetchFailed,
    LocalWeightsNotFound,
    ModelFile,
    WeightsOffline,
    auto_agegender_backend,
    check_model_files,
    fetch_missing,
    install_from,
    pipeline_can_run,
)
from tests.ports import closed_port

REQUIRED = {
    "dlib-shape-predictor-68",
    "dlib-mmod-cnn",
    "opencv-haar-frontalface",
    "deepface-age",
    "deepface-gender",
}


@pytest.fixture
def deepface_home(tmp_path, monkeypatch) -> Path:
    """An empty DEEPFACE_HOME, so the DeepFace files count as missing (and the sha256 cache
    goes in its weights folder, not in the user's $XDG_CACHE_HOME)."""
    home = tmp_path / "home"
    monkeypatch.setenv("DEEPFACE_HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return home


def _weights(home: Path) -> Path:
    return home / ".deepface" / "weights"


def _sums(**payload: bytes) -> dict[str, str]:
    """Pinned sums for synthetic weights: _sums(age=b"...") -> {"deepface-age": sha256}."""
    return {f"deepface-{name}": hashlib.sha256(data).hexdigest() for name, data in payload.items()}


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


def test_check_lists_every_model_file_with_size_hash_and_status(deepface_home):
    folder = deepface_home / ".deepface" / "weights"
    folder.mkdir(parents=True)
    (folder / "age_model_weights.h5").write_bytes(b"age weights")
    files = {f.name: f for f in check_model_files()}
    assert set(files) == REQUIRED | {"opencv-yunet"}
    assert all(isinstance(f, ModelFile) for f in files.values())
    age = files["deepface-age"]
    # Not the real file: present, hashed, and bad because its sha256 is not the pinned one.
    assert (age.status, age.size, age.path, age.verified) == ("bad", 11, folder / "age_model_weights.h5", "no")
    assert age.sha256 == hashlib.sha256(b"age weights").hexdigest()
    age = {f.name: f for f in check_model_files(pinned=_sums(age=b"age weights"))}["deepface-age"]
    assert (age.status, age.verified) == ("ok", "yes")
    gender = files["deepface-gender"]
    assert (gender.status, gender.size, gender.sha256) == ("missing", None, None)
    assert files["opencv-yunet"].status == "optional-missing"
    predictor = files["dlib-shape-predictor-68"]
    assert predictor.status == "ok" and predictor.size == predictor.path.stat().st_size > 1_000_000
    assert len(predictor.sha256) == 64 and predictor.verified == "unpinned"
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
        pinned={
            "deepface-age": hashlib.sha256(payload["age"]).hexdigest(),
            "deepface-gender": hashlib.sha256(payload["gender"]).hexdigest(),
        },
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
    assert list((deepface_home / ".deepface" / "weights").iterdir()) == []  # no .part either


def test_the_real_weights_are_pinned():
    from faces.models import weights

    assert [e.sha256 for e in weights._registry() if e.name.startswith("deepface-")] == [
        weights.AGE_SHA256,
        weights.GENDER_SHA256,
    ]
    assert all(len(s) == 64 for s in (weights.AGE_SHA256, weights.GENDER_SHA256))


def test_unreachable_source_is_a_named_error_and_leaves_no_partial_file(deepface_home):
    url = f"http://127.0.0.1:{closed_port()}/age.h5"
    with pytest.raises(WeightsOffline, match="age_model_weights.h5") as info:
        fetch_missing(sources={"deepface-age": url})
    assert url in str(info.value) and isinstance(info.value, FetchFailed)
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


def test_an_interrupted_download_keeps_only_a_partial_under_a_stable_name(deepface_home):
    """Never a half file under the real name; the bytes stay in `<name>.part` for a resume."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ShortBody)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(FetchFailed, match="1000 of 1000000"):
            fetch_missing(sources={"deepface-age": f"http://127.0.0.1:{server.server_address[1]}/age.h5"})
    finally:
        server.shutdown()
        server.server_close()
    part = _weights(deepface_home) / "age_model_weights.h5.part"
    assert list(_weights(deepface_home).iterdir()) == [part]
    assert part.read_bytes() == b"x" * 1_000


def test_default_sources_are_deepfaces_published_urls():
    import faces.models.tf_runtime  # noqa: F401  (Keras 2 must be chosen before deepface's tf modules)

    # isort: split
    from deepface.models.demography.tf import Age, Gender
    from deepface.models.face_detection import YuNet

    assert list(weights.AGE_URLS) == Age.WEIGHTS_URL
    assert list(weights.GENDER_URLS) == Gender.WEIGHTS_URL
    assert weights.YUNET_URLS == (YuNet.WEIGHTS_URL,)


# --- resumable downloads ------------------------------------------------------------------


def _only_age(url: str) -> dict:
    """Sources for a test about the age file alone: gender gets none, so it is skipped."""
    return {"deepface-age": url, "deepface-gender": []}


def test_a_cut_connection_is_resumed_with_a_range_request_for_the_rest(deepface_home, weights_server):
    age = os.urandom(3_000_000)
    server = weights_server({"age.h5": age}, cuts=1)  # the first answer stops after 1.5 MB
    events = []
    fetch_missing(
        progress=lambda *e: events.append(e), sources=_only_age(f"{server.url}/age.h5"), pinned=_sums(age=age)
    )
    assert (_weights(deepface_home) / "age_model_weights.h5").read_bytes() == age
    assert server.requests == [("age.h5", None), ("age.h5", "bytes=1500000-")]
    assert server.sent == [1_500_000, 1_500_000]  # only the rest was sent the second time
    assert events[-1] == ("deepface-age", 3_000_000, 3_000_000)
    assert [p.name for p in _weights(deepface_home).iterdir()] == ["age_model_weights.h5"]


def test_a_partial_left_by_an_earlier_run_is_resumed(deepface_home, weights_server):
    age = os.urandom(200_000)
    _weights(deepface_home).mkdir(parents=True)
    (_weights(deepface_home) / "age_model_weights.h5.part").write_bytes(age[:120_000])
    server = weights_server({"age.h5": age})
    fetch_missing(sources=_only_age(f"{server.url}/age.h5"), pinned=_sums(age=age))
    assert (_weights(deepface_home) / "age_model_weights.h5").read_bytes() == age
    assert server.requests == [("age.h5", "bytes=120000-")] and server.sent == [80_000]


def test_a_server_that_answers_200_to_a_range_request_starts_the_file_over(deepface_home, file_server):
    folder, base = file_server  # SimpleHTTPRequestHandler ignores Range
    age = os.urandom(50_000)
    (folder / "age.h5").write_bytes(age)
    _weights(deepface_home).mkdir(parents=True)
    (_weights(deepface_home) / "age_model_weights.h5.part").write_bytes(b"stale bytes of another try")
    fetch_missing(sources=_only_age(f"{base}/age.h5"), pinned=_sums(age=age))
    assert (_weights(deepface_home) / "age_model_weights.h5").read_bytes() == age


def test_a_416_for_a_whole_partial_installs_it_without_downloading_again(deepface_home, weights_server):
    age = os.urandom(10_000)
    _weights(deepface_home).mkdir(parents=True)
    (_weights(deepface_home) / "age_model_weights.h5.part").write_bytes(age)  # killed before the rename
    server = weights_server({"age.h5": age})
    fetch_missing(sources=_only_age(f"{server.url}/age.h5"), pinned=_sums(age=age))
    assert (_weights(deepface_home) / "age_model_weights.h5").read_bytes() == age
    assert server.requests == [("age.h5", "bytes=10000-")] and server.sent == []


def test_a_416_for_a_partial_that_is_not_this_file_starts_over(deepface_home, weights_server):
    age = os.urandom(10_000)
    _weights(deepface_home).mkdir(parents=True)
    (_weights(deepface_home) / "age_model_weights.h5.part").write_bytes(os.urandom(12_000))
    server = weights_server({"age.h5": age})
    fetch_missing(sources=_only_age(f"{server.url}/age.h5"), pinned=_sums(age=age))
    assert (_weights(deepface_home) / "age_model_weights.h5").read_bytes() == age
    assert server.requests == [("age.h5", "bytes=12000-"), ("age.h5", None)]


def test_a_resumed_file_with_a_wrong_sha256_is_refused_and_its_partial_removed(deepface_home, weights_server):
    age = os.urandom(10_000)
    server = weights_server({"age.h5": age}, cuts=1)
    with pytest.raises(FetchFailed, match="is not the pinned"):
        fetch_missing(sources=_only_age(f"{server.url}/age.h5"), pinned=_sums(age=b"other"))
    assert list(_weights(deepface_home).iterdir()) == []


# --- sources: mirror first, offline ----------------------------------------------------------


def test_the_mirror_is_asked_first_and_the_other_sources_not_at_all_when_it_delivers(deepface_home, weights_server):
    age, gender = os.urandom(5_000), os.urandom(4_000)
    mirror = weights_server({"age_model_weights.h5": age, "gender_model_weights.h5": gender})
    public = weights_server({"age.h5": age, "gender.h5": gender})
    fetch_missing(
        mirror=f"{mirror.url}/",
        pinned=_sums(age=age, gender=gender),
        sources={"deepface-age": f"{public.url}/age.h5", "deepface-gender": f"{public.url}/gender.h5"},
    )
    assert mirror.requests == [("age_model_weights.h5", None), ("gender_model_weights.h5", None)]
    assert public.requests == []


def test_a_mirror_serving_a_wrong_file_falls_back_to_the_other_sources(deepface_home, weights_server):
    age, gender = os.urandom(5_000), os.urandom(4_000)
    mirror = weights_server({"age_model_weights.h5": b"a different file"})  # and no gender: 404
    public = weights_server({"age.h5": age, "gender.h5": gender})
    fetch_missing(
        mirror=mirror.url,
        pinned=_sums(age=age, gender=gender),
        sources={"deepface-age": f"{public.url}/age.h5", "deepface-gender": f"{public.url}/gender.h5"},
    )
    assert (_weights(deepface_home) / "age_model_weights.h5").read_bytes() == age
    assert (_weights(deepface_home) / "gender_model_weights.h5").read_bytes() == gender
    assert mirror.requests == [("age_model_weights.h5", None), ("gender_model_weights.h5", None)]
    assert public.requests == [("age.h5", None), ("gender.h5", None)]


def test_no_reachable_source_is_one_offline_error_naming_deepface_home_and_the_folder(deepface_home):
    closed = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(WeightsOffline) as info:
        fetch_missing(mirror=closed, mirror_only=True)
    message = str(info.value)
    assert f"DEEPFACE_HOME={deepface_home}" in message and str(_weights(deepface_home)) in message
    assert "age_model_weights.h5 and gender_model_weights.h5" in message
    assert "faces models fetch --from DIR" in message and "FACES_WEIGHTS_URL" in message
    assert f"{closed}/age_model_weights.h5" in message


# --- install from copies made by hand -----------------------------------------------------------


def _copies(folder: Path, **payload: bytes) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}_model_weights.h5" for name in payload]
    for path, data in zip(paths, payload.values()):
        path.write_bytes(data)
    return paths


def test_install_from_a_folder_holding_the_two_files(deepface_home, tmp_path):
    payload = {"age": os.urandom(3_000), "gender": os.urandom(2_000)}
    _copies(tmp_path / "usb", **payload)
    written = install_from([tmp_path / "usb"], pinned=_sums(**payload))
    assert written == [
        _weights(deepface_home) / "age_model_weights.h5",
        _weights(deepface_home) / "gender_model_weights.h5",
    ]
    assert [p.read_bytes() for p in written] == list(payload.values())
    assert sorted(p.name for p in _weights(deepface_home).iterdir()) == [
        "age_model_weights.h5",
        "gender_model_weights.h5",
    ]


def test_install_from_the_two_files_themselves(deepface_home, tmp_path):
    payload = {"age": os.urandom(3_000), "gender": os.urandom(2_000)}
    age, gender = _copies(tmp_path / "a", age=payload["age"]) + _copies(tmp_path / "b", gender=payload["gender"])
    install_from([age, gender], pinned=_sums(**payload))
    assert (_weights(deepface_home) / "gender_model_weights.h5").read_bytes() == payload["gender"]
    assert (_weights(deepface_home) / "age_model_weights.h5").read_bytes() == payload["age"]


def test_install_from_refuses_a_file_that_is_not_the_pinned_one_and_leaves_nothing(deepface_home, tmp_path):
    _copies(tmp_path / "usb", age=b"x" * 1_000)  # e.g. a copy cut short
    with pytest.raises(ChecksumMismatch, match="age_model_weights.h5: sha256 .* is not the pinned"):
        install_from([tmp_path / "usb"])  # the real pinned sums
    assert list(_weights(deepface_home).iterdir()) == []


def test_install_from_a_path_without_weights_is_a_named_error(deepface_home, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "renamed.h5").write_bytes(b"x")
    for path, words in (
        (tmp_path / "empty", "holds none of"),
        (tmp_path / "renamed.h5", "original file names"),
        (tmp_path / "nowhere", "does not exist"),
    ):
        with pytest.raises(LocalWeightsNotFound, match=words):
            install_from([path])


# --- check: verified sums, cache, backend ----------------------------------------------------


def _check(**pinned) -> dict[str, ModelFile]:
    return {f.name: f for f in check_model_files(pinned=pinned or None)}


def test_a_truncated_weight_file_is_bad_not_ok(deepface_home):
    _copies(_weights(deepface_home), age=b"\x89HDF" + b"\0" * 996)  # 1000 bytes of a 540 MB file
    age = _check()["deepface-age"]
    assert (age.status, age.verified, age.size) == ("bad", "no", 1000)


def test_hashes_are_cached_by_path_size_and_mtime_so_a_second_check_reads_no_file(deepface_home):
    age = _copies(_weights(deepface_home), age=b"age weights")[0]
    pinned = _sums(age=b"age weights")
    assert _check(**pinned)["deepface-age"].verified == "yes"
    cache = _weights(deepface_home) / ".sha256-cache.json"
    rows = json.loads(cache.read_text())
    assert rows[str(age)] == {"size": 11, "mtime_ns": age.stat().st_mtime_ns, "sha256": pinned["deepface-age"]}
    written = cache.stat().st_mtime_ns
    _check(**pinned)
    assert cache.stat().st_mtime_ns == written  # nothing new hashed, nothing rewritten
    # The cached value is what a second check believes: proof that it did not hash the file again.
    rows[str(age)]["sha256"] = "0" * 64
    cache.write_text(json.dumps(rows))
    assert _check(**pinned)["deepface-age"].verified == "no"
    # A new mtime (a file replaced in place) is hashed again.
    os.utime(age, ns=(age.stat().st_atime_ns, age.stat().st_mtime_ns + 1_000_000_000))
    assert _check(**pinned)["deepface-age"].verified == "yes"


def test_the_cache_lives_under_xdg_cache_home_when_it_is_set(deepface_home, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.sha256_cache_path() == tmp_path / "xdg" / "faces" / "sha256-cache.json"
    check_model_files()
    assert str(weights.deepface_weights_dir()) not in str(weights.sha256_cache_path())
    assert weights.sha256_cache_path().is_file()


def test_auto_picks_deepface_when_both_files_are_present_as_the_workers_do(deepface_home):
    payload = {"age": b"age weights"}
    _copies(_weights(deepface_home), **payload)
    only_age = list(_check(**_sums(**payload)).values())
    assert auto_agegender_backend(only_age, bundled_available=True) == "bundled"
    assert auto_agegender_backend(only_age, bundled_available=False) is None
    _copies(_weights(deepface_home), gender=b"gender weights")
    unverified = list(_check(**_sums(**payload)).values())  # gender against the real sum
    assert auto_agegender_backend(unverified, bundled_available=False) == "deepface"


def test_the_pipeline_runs_without_deepface_weights_only_with_the_bundled_model(deepface_home):
    files = list(_check().values())
    assert pipeline_can_run(files, bundled_available=True)
    assert not pipeline_can_run(files, bundled_available=False)
    broken = [f if f.name != "dlib-mmod-cnn" else ModelFile(f.name, f.path, None, None, "missing") for f in files]
    assert not pipeline_can_run(broken, bundled_available=True)
