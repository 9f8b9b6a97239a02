"""The environment is read at the settings edge (ops/settings.py, faces/settings.py), and
streams/ and models/ take what it read as parameters: the embedded server's socket directory
($XDG_RUNTIME_DIR), the age/gender backend ($FACES_AGEGENDER), where the model files are and how
they compute ($DEEPFACE_HOME, $XDG_CACHE_HOME, $FACES_YUNET_MODEL, $FACES_AGEGENDER_PRECISION,
$FACES_TF_THREADS). In-process. Also: every error reaches the user as the one line and code the
error base (faces/errors.py) gives it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from faces import exits
from faces.api import FaceAnalyzer
from faces.consumers import agegender as agegender_stage
from faces.consumers import detect as detect_stage
from faces.models import weights
from faces.models.agegender import load_agegender
from faces.models.agegender_backends import DEFAULT_CHOICE, ENV_VAR, check_choice
from faces.models.detect import BackendUnavailable
from faces.models.precision import FLOAT32, TensorFlowThreadsError, choose_precision
from faces.ops.failures import describe_failure
from faces.ops.settings import AppSettings
from faces.producer.replay import BadSelection, ImageNotFound
from faces.settings import ModelSettings
from faces.streams.embedded import MAX_SOCKET_PATH, socket_path
from faces.streams.publishing import NoRoom


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


def _environment_elsewhere(tmp_path: Path, monkeypatch) -> None:
    """Every variable the models take set to something the tests' given settings contradict."""
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "env-home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "env-cache"))
    monkeypatch.setenv("FACES_YUNET_MODEL", str(tmp_path / "env-yunet.onnx"))
    monkeypatch.setenv("FACES_AGEGENDER_PRECISION", "half")  # not a precision: refused if read
    monkeypatch.setenv("FACES_TF_THREADS", "2")


def test_model_settings_are_read_from_the_environment_at_the_edge(tmp_path, monkeypatch):
    """ModelSettings takes the six variables the models use from the environment it is given
    (unset and empty paths: None), and AppSettings, made once per command, reads the process's."""
    _environment_elsewhere(tmp_path, monkeypatch)
    read = ModelSettings.from_environ()
    assert read == ModelSettings(
        precision="half",
        yunet_model=tmp_path / "env-yunet.onnx",
        deepface_home=tmp_path / "env-home",
        cache_home=tmp_path / "env-cache",
        tf_threads="2",
    )
    assert AppSettings().models == read
    assert ModelSettings.from_environ({"DEEPFACE_HOME": "", "FACES_TF_INTER_THREADS": "1"}) == ModelSettings(
        tf_inter_threads="1"
    )


def test_models_honour_the_settings_they_are_given_over_the_environment(tmp_path, monkeypatch):
    """With the environment saying otherwise, the weights registry, the sha256 cache, YuNet's
    file, the age/gender precision and DeepFace's folder are the given settings', for a model
    function, a stage built from the worker's options and faces.FaceAnalyzer alike."""
    _environment_elsewhere(tmp_path, monkeypatch)
    home, yunet = tmp_path / "given-home", tmp_path / "given-yunet.onnx"
    given = ModelSettings(precision=FLOAT32, yunet_model=yunet, deepface_home=home, cache_home=tmp_path / "cache")
    folder = home / ".deepface" / "weights"
    assert weights.deepface_weights_dir(given) == folder
    assert weights.sha256_cache_path(given) == tmp_path / "cache" / "faces" / "sha256-cache.json"
    found = {f.name: f.path for f in weights.check_model_files(with_sha256=False, models=given)}
    assert found["deepface-age"] == folder / weights.AGE_FILE
    assert found["opencv-yunet"] == folder / weights.YUNET_FILE
    assert choose_precision(given.precision) == FLOAT32
    with pytest.raises(weights.WeightsMissing, match=str(folder)):
        load_agegender(models=given)  # the environment's "half" would be a PrecisionError
    stage = agegender_stage.build({"agegender": "auto", "models": given})
    assert stage.models == given and stage._signature == (None, None)  # the given (empty) folder
    # YuNet's file: the given one is looked for, in a stage and in the in-process API.
    for build in (
        lambda: detect_stage.build({"detector": "opencv-yunet", "models": given}),
        lambda: FaceAnalyzer(detector="opencv-yunet", models=given),
    ):
        with pytest.raises(BackendUnavailable, match=str(yunet)):
            build()


def test_every_error_is_reported_with_the_line_and_code_its_base_gives():
    """Errors derive from FacesError: one the user can fix is its own line, no "unexpected"
    prefix (a bad $FACES_TF_THREADS in a worker's log), with its code (a selection that cannot
    select: usage, 2); one handled inside that escapes reads as any unexpected exception."""
    threads = TensorFlowThreadsError("FACES_TF_THREADS='two' is not a positive whole number of threads")
    assert describe_failure(threads) == (exits.FAILED, str(threads))
    assert describe_failure(BadSelection("'x' is not a time")) == (exits.USAGE, "'x' is not a time")
    assert describe_failure(ImageNotFound("image x not found")) == (exits.FAILED, "image x not found")
    code, line = describe_failure(NoRoom(5, 5))
    assert code == exits.FAILED and line.startswith("unexpected NoRoom: 5 images in flight")
