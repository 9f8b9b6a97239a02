"""The environment is read at the settings edge (ops/settings.py), and streams/ takes what it
read as parameters: the embedded server's socket directory ($XDG_RUNTIME_DIR), the age/gender
backend ($FACES_AGEGENDER). In-process."""

from __future__ import annotations

import tempfile
from pathlib import Path

from faces.models.agegender_backends import DEFAULT_CHOICE, ENV_VAR, check_choice
from faces.ops.settings import AppSettings
from faces.streams.embedded import MAX_SOCKET_PATH, socket_path


def _deep(tmp_path: Path) -> Path:
    """A state directory whose socket path would be too long to live inside it."""
    return tmp_path / ("d" * (MAX_SOCKET_PATH + 10))


def test_the_embedded_socket_goes_where_the_caller_says_whatever_the_environment(tmp_path, monkeypatch):
    """With $XDG_RUNTIME_DIR set, streams/ does not read it: a deep state dir's socket goes to
    the runtime dir it is given, and without one to the per-user temporary directory; a short
    state dir keeps its socket inside whatever is given."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "from-env"))
    given = tmp_path / "run"
    assert socket_path(_deep(tmp_path), given).parent == given / "faces"
    assert socket_path(_deep(tmp_path)).parent.parent == Path(tempfile.gettempdir())
    assert socket_path(tmp_path / "s", given) == (tmp_path / "s").resolve() / "redis.sock"


def test_app_settings_read_the_runtime_dir_from_the_environment(tmp_path, monkeypatch):
    """AppSettings (made once per command) takes an absolute $XDG_RUNTIME_DIR, ignores a
    relative one (as the XDG spec says) and an unset one."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert AppSettings().runtime_dir == tmp_path
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative/dir")
    assert AppSettings().runtime_dir is None
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert AppSettings().runtime_dir is None


def test_the_age_gender_choice_is_a_parameter_not_the_environment(monkeypatch):
    """models/ reads no $FACES_AGEGENDER: check_choice(None) is the default whatever the
    environment says (the command line reads the variable into --agegender: typer's envvar)."""
    monkeypatch.setenv(ENV_VAR, "dlib")
    assert check_choice(None) == DEFAULT_CHOICE != "dlib"
    assert check_choice("DLIB") == "dlib"
