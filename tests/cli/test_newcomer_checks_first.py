"""Every option and setting of `faces up` / `faces run` is checked before anything starts
(issue 26 item 2): a refusal is one line on the terminal with the documented exit code, and no
Redis, worker or API was started (the state dir, where the embedded Redis and the worker logs
would go, is never created). Real CLI processes."""

from __future__ import annotations

import shutil
import time

import pytest

from faces.ops import exits
from tests.images import DATA
from tests.pipeline import faces_cli
from tests.ports import free_port


def _refused_before_start(tmp_path, *args: str, env: dict[str, str] | None = None):
    """`faces ARGS` on a fresh state dir: the run, after checking nothing was started."""
    state = tmp_path / "state"
    started = time.monotonic()
    run = faces_cli(*args, "--state-dir", str(state), env=env, timeout=60)
    assert not state.exists(), f"something started: {sorted(p.name for p in state.iterdir())}"
    assert time.monotonic() - started < 30  # at once, not after a stack came up and went down
    assert run.stderr.count("error:") == 1, run.stderr
    return run


def test_short_api_token_refuses_up_serve_before_anything_starts(tmp_path):
    """FACES_API_TOKEN=short `faces up --serve`: exit 2 at once, the reason (16 characters) on
    the terminal, no Redis and no worker started."""
    run = _refused_before_start(tmp_path, "up", "--serve", "--port", str(free_port()), env={"FACES_API_TOKEN": "short"})
    assert run.returncode == exits.USAGE, run.stderr
    assert "FACES_API_TOKEN is 5 characters: use at least 16" in run.stderr


@pytest.mark.parametrize(
    "setting, value, words",
    [
        ("FACES_HTTP_MAX_CONNECTIONS", "many", "--max-connections"),
        ("FACES_HTTP_HOST", "0.0.0.0", "FACES_API_TOKEN is unset"),
    ],
)
def test_bad_api_settings_refuse_up_serve_before_anything_starts(tmp_path, setting, value, words):
    """A setting of the API that `faces up --serve` would start, read from the environment as
    that process reads it (a value that is no number, an open bind without a token): exit 2 on
    the terminal before Redis or a worker starts."""
    run = _refused_before_start(
        tmp_path, "up", "--serve", "--port", str(free_port()), env={setting: value, "FACES_API_TOKEN": ""}
    )
    assert run.returncode == exits.USAGE, run.stderr
    assert words in run.stderr
    if setting == "FACES_HTTP_HOST":  # `faces up` has no --allow-insecure-bind: the fix it names works
        assert "set FACES_HTTP_ALLOW_INSECURE_BIND=1" in run.stderr and "--allow-insecure-bind" not in run.stderr


def test_uploads_folder_that_is_a_file_refuses_up_serve_before_anything_starts(tmp_path):
    """FACES_UPLOADS naming a file: one line naming it and --uploads, exit 1, nothing started."""
    (tmp_path / "a-file").write_text("")
    run = _refused_before_start(
        tmp_path, "up", "--serve", "--port", str(free_port()), env={"FACES_UPLOADS": str(tmp_path / "a-file")}
    )
    assert run.returncode == exits.FAILED, run.stderr
    assert f"cannot keep uploads in {tmp_path / 'a-file'}" in run.stderr and "--uploads" in run.stderr


@pytest.mark.parametrize("command", ["run", "up"])
@pytest.mark.parametrize("flag", ["--output", "--storage"])
def test_output_or_storage_naming_a_file_is_refused_before_anything_starts(tmp_path, command, flag):
    """`faces run`/`faces up` with --output or --storage naming a file (or a folder under one):
    exit 2 with the reason, where the sink used to dead-letter every image."""
    (tmp_path / "a-file").write_text("")
    shutil.copy(DATA / "astronaut.jpg", tmp_path / "photo.jpg")
    photos = [str(tmp_path / "photo.jpg")] if command == "run" else []
    for folder, reason in (
        (tmp_path / "a-file", "is a file"),
        (tmp_path / "a-file" / "sub", f"cannot be created: {tmp_path / 'a-file'} is a file"),
    ):
        run = _refused_before_start(tmp_path, command, *photos, flag, str(folder))
        assert run.returncode == exits.USAGE, run.stderr
        assert f"{flag} {folder} {reason}" in run.stderr
