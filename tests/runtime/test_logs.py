"""Worker logs on a non-terminal: one JSON object per line, whatever TensorFlow, Python's
logging or an exception writes; error results and dead letters at warning level.

The workers run as real processes (`faces worker STAGE --burst`) against a real Redis, with
stderr a pipe, as under `faces run`, `faces up` or a container runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np

from faces.models.precision import FLOAT32, PRECISION_ENV
from faces.models.vgg_weights import WEIGHTED_LAYERS
from faces.producer.submit import submit_file
from tests.images import DATA
from tests.pipeline import REPO, burst_worker, result_files

# Whatever the developer's shell says, these runs log at the default level unless told.
QUIET_ENV = {"FACES_LOG_LEVEL": "", "FACES_DEBUG": ""}


def json_lines(text: str) -> list[dict]:
    """Every line of `text` parsed as one JSON object; fails naming the first line that is not."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {number} is not one JSON object: {line!r}\n{text}") from None
        assert isinstance(record, dict), line
        records.append(record)
    return records


def run_worker(stage: str, redis_url: str, tmp_path: Path, *args: str, env: dict | None = None):
    done = burst_worker(
        stage,
        redis_url,
        tmp_path / "storage",
        *args,
        env={**QUIET_ENV, "DEEPFACE_HOME": str(tmp_path / "deepface-empty"), **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", "a worker writes nothing to stdout (the pool sends it to the same log)"
    return json_lines(done.stderr)


def processed(records: list[dict], image_id: str) -> dict:
    [record] = [r for r in records if r["event"] == "entry.processed" and r["image_id"] == image_id]
    return record


def test_every_stage_logs_json_lines_and_error_results_at_warning(tmp_path, redis_client, redis_url):
    """An undecodable image and a photo through the five real workers (the bundled dlib
    age/gender networks): every stderr line of every worker is one JSON object; the error is
    a warning, with its type and message, where it arose (detect) and where it became a result
    (sink), and not again in the stages it only passed through."""
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    bad_id = submit_file(redis_client, bad).image_id
    good_id = submit_file(redis_client, DATA / "astronaut.jpg").image_id

    logs = {
        stage: run_worker(stage, redis_url, tmp_path, *args)
        for stage, args in [
            ("detect", ()),
            ("landmarks", ()),
            ("agegender", ("--agegender", "dlib")),
            ("embed", ()),
            ("sink", ()),
        ]
    }

    for stage in ("detect", "sink"):
        failed = processed(logs[stage], bad_id)
        assert failed["level"] == "warning", failed
        assert failed["error_type"] == "not-an-image" and failed["error_stage"] == "detect", failed
        assert "not an image" in failed["error"], failed
    for stage in ("landmarks", "agegender", "embed"):
        assert processed(logs[stage], bad_id)["level"] == "info"
    for stage, records in logs.items():
        assert processed(records, good_id)["level"] == "info", stage
        assert {"worker.ready", "worker.stopped"} <= {r["event"] for r in records}, stage
        assert all(r["stage"] == stage and r["timestamp"] for r in records), stage
    results = {r["image_id"]: r for r in result_files(tmp_path / "storage").values()}
    assert results[bad_id]["status"] == "error" and results[good_id]["status"] == "ok"
    assert results[good_id]["models"]["agegender"], "the bundled networks ran"


def write_misshapen_deepface_weights(home: Path) -> None:
    """Keras-layout weight files with DeepFace's 16 weighted layers but 1x1x1x1 kernels: they
    pass the reader's layout check (models/vgg_weights.py), so a worker on TensorFlow's engine
    imports TensorFlow and builds the network, which then refuses the shapes; the worker falls
    back to the bundled networks. The cheapest way to make a worker load TensorFlow."""
    weights = home / ".deepface" / "weights"
    weights.mkdir(parents=True)
    layers = [f"layer{i}" for i in range(WEIGHTED_LAYERS)]
    for name in ("age_model_weights.h5", "gender_model_weights.h5"):
        with h5py.File(weights / name, "w") as file:
            file.attrs["layer_names"] = [layer.encode() for layer in layers]
            for layer in layers:
                group = file.create_group(layer)
                group.attrs["weight_names"] = [b"kernel", b"bias"]
                group.create_dataset("kernel", data=np.zeros((1, 1, 1, 1), np.float32))
                group.create_dataset("bias", data=np.zeros(1, np.float32))


def test_tensorflow_start_up_noise_stays_out_of_the_json_log(tmp_path, redis_url):
    """TensorFlow's C++ core prints its start-up notices (absl's "All log messages before
    absl::InitializeLog()...", oneDNN, CUDA probing) on file descriptor 2. At the default level
    they are gone; at DEBUG each is one `native.stderr` JSON event. Either way every line of
    the agegender worker's stderr is one JSON object."""
    home = tmp_path / "deepface-misshapen"
    write_misshapen_deepface_weights(home)
    on_tensorflow = {"DEEPFACE_HOME": str(home), PRECISION_ENV: FLOAT32}

    quiet = run_worker("agegender", redis_url, tmp_path, env=on_tensorflow)
    assert [r["event"] for r in quiet if r["event"] == "native.stderr"] == []
    assert "agegender.deepface_unavailable" in {r["event"] for r in quiet}, "DeepFace was tried"

    debug = run_worker("agegender", redis_url, tmp_path, env={**on_tensorflow, "FACES_LOG_LEVEL": "DEBUG"})
    native = [r["line"] for r in debug if r["event"] == "native.stderr"]
    assert any("InitializeLog" in line or "oneDNN" in line for line in native), (
        f"TensorFlow was loaded and its notices caught: {native}"
    )
    assert all(r["level"] == "debug" and r["source"] == "agegender" for r in debug if r["event"] == "native.stderr")


def run_python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter with stderr a pipe (logging set up is per process)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **QUIET_ENV, **(env or {})},
    )


def test_a_logged_exception_is_one_json_line_with_the_traceback_in_one_field():
    """log.exception in a worker-like call, from structlog and from Python's logging (how
    TensorFlow's Python side logs), and a Python warning: one JSON object each, the
    traceback as text in "exception", never rich's box-drawn frames."""
    done = run_python(
        """
        import logging, warnings
        import structlog
        from faces import logs

        logs.configure()
        structlog.contextvars.bind_contextvars(stage="detect", consumer="detect-test")
        log = structlog.get_logger("worker")

        def handle(batch):
            return batch[0] / 0

        try:
            handle([1])
        except ZeroDivisionError:
            log.exception("batch.crashed", size=1)
            logging.getLogger("tensorflow").exception("graph failed")
        warnings.warn("deprecated call", DeprecationWarning, stacklevel=1)
        logging.getLogger("absl").info("quiet below warning")
    """,
        env={"PYTHONWARNINGS": "always"},
    )
    assert done.returncode == 0, done.stderr
    ours, library, warned = json_lines(done.stderr)
    for record in (ours, library):
        assert record["level"] == "error"
        assert record["exception"].startswith("Traceback (most recent call last):")
        assert "in handle" in record["exception"] and "ZeroDivisionError" in record["exception"]
        assert not set("╭│╰─") & set(record["exception"])
    assert ours["event"] == "batch.crashed" and ours["stage"] == "detect" and ours["size"] == 1
    assert library["logger"] == "tensorflow" and library["stage"] == "detect"
    assert warned["logger"] == "py.warnings" and "deprecated call" in warned["event"]


def test_native_stderr_is_logged_as_json_events_debug_or_warning_on_failure():
    """What C code writes on descriptor 2 inside `native_stderr_logged` becomes events (at
    warning when the block failed: the lines may say why); Python's own log lines meanwhile
    go straight out, in order."""
    done = run_python("""
        import os
        import structlog
        from faces import logs

        logs.configure(level="DEBUG")
        log = structlog.get_logger("t")
        with logs.native_stderr_logged("loader"):
            os.write(2, b"I0000 raw C++ notice\\n")
            log.info("python.meanwhile")
        try:
            with logs.native_stderr_logged("loader"):
                os.write(2, b"F0000 why it failed\\n")
                raise RuntimeError("load failed")
        except RuntimeError:
            pass
        log.info("after")
    """)
    assert done.returncode == 0, done.stderr
    records = json_lines(done.stderr)
    assert [(r["event"], r["level"], r.get("line")) for r in records] == [
        ("python.meanwhile", "info", None),
        ("native.stderr", "debug", "I0000 raw C++ notice"),
        ("native.stderr", "warning", "F0000 why it failed"),
        ("after", "info", None),
    ]


def test_faces_log_level_must_be_a_level_and_silences_tensorflow_unless_debug():
    done = run_python(
        """
        import os
        from faces import logs

        logs.configure(level="WARNING")
        print(os.environ["TF_CPP_MIN_LOG_LEVEL"], logs.effective_level("WARNING"))
    """,
        env={"FACES_LOG_LEVEL": "debug", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.stdout.split() == ["0", "DEBUG"], done.stderr  # the variable wins over the default
    done = run_python(
        """
        import os
        from faces import logs

        logs.configure()
        print(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    """,
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # as the Dockerfile sets it
    assert done.stdout.split() == ["3"], done.stderr
    done = run_python(
        """
        from faces import logs

        try:
            logs.configure()
        except logs.LogLevelError as exc:
            print(exc, exc.exit_code)
    """,
        env={"FACES_LOG_LEVEL": "loud"},
    )
    assert "FACES_LOG_LEVEL='LOUD' is not a log level" in done.stdout and done.stdout.split()[-1] == "2"
