"""Issue 12 through the real CLI (subprocesses): every failure of run / up / worker / submit /
status / watch is one line with the documented exit code, nothing claims a success that did
not happen, and `faces run` keeps what it did (its own --storage, absolute paths, --force)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from faces.ops import exits
from faces.ops.supervise.pool import WorkerPool
from tests.images import DATA, photo_variants
from tests.pipeline import REPO, faces_cli, faces_process, result_files, run_args
from tests.waiting import wait_until

NO_URL = {"FACES_REDIS_URL": "", "REDIS_URL": ""}


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The only line on stderr, an `error: ` line; no traceback anywhere."""
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def started_until_logged(args: list[str], event: str) -> tuple[subprocess.Popen, list[str]]:
    """`faces ARGS...` as a running process, once its stderr has logged `event`; with the lines
    read so far (the rest is still to be read from its stderr)."""
    process = faces_process(*args, piped=True)
    lines: list[str] = []
    wait_until(
        lambda: lines.append(process.stderr.readline()) or event in lines[-1],
        timeout_s=60,
        what=f"`faces {args[0]}` logging {event}",
    )
    return process, lines


def test_an_unknown_detector_is_refused_before_any_worker_starts(tmp_path):
    done = faces_cli("run", str(DATA), "--state-dir", str(tmp_path / "s"), "--detector", "bogus", timeout=60)
    assert done.returncode == exits.USAGE
    assert "unknown detector backend 'bogus'; choose one of dlib-hog, opencv-haar" in one_error_line(done)
    assert not (tmp_path / "s" / "logs").exists(), "workers were started"


def test_a_detector_without_its_model_file_is_refused_before_any_worker_starts(tmp_path):
    done = faces_cli(
        "up",
        "--state-dir",
        str(tmp_path / "s"),
        "--detector",
        "opencv-yunet",
        env={"FACES_YUNET_MODEL": str(tmp_path / "absent.onnx")},
        timeout=60,
    )
    assert done.returncode == exits.USAGE
    assert f"opencv-yunet needs its ONNX model at {tmp_path / 'absent.onnx'}, which is missing" in one_error_line(done)
    assert not (tmp_path / "s" / "logs").exists()


def test_a_worker_failing_at_start_stops_run_with_its_own_error_line(tmp_path):
    """The model file is there but unreadable: only the worker finds out; `faces run` stops at
    once (it was restarted forever) and prints the worker's reason."""
    broken = tmp_path / "yunet.onnx"
    broken.write_bytes(b"not an onnx model")
    done = faces_cli(
        *run_args(DATA, tmp_path / "s", tmp_path / "out", "--detector", "opencv-yunet"),
        env={"FACES_YUNET_MODEL": str(broken)},
        timeout=120,
    )
    assert done.returncode == exits.FAILED
    line = one_error_line(done)
    assert line.startswith(f"error: the detect worker could not start: OpenCV could not load YuNet from {broken}"), line
    assert "detect-0.log" in line


def test_up_stops_naming_the_fix_when_a_worker_loses_its_group(tmp_path):
    """A worker that stopped for good (exit 5: its group was lost) is not restarted forever."""
    import redis as redis_py

    state = tmp_path / "s"
    stack = [
        "up",
        "--state-dir",
        str(state),
        "--storage",
        str(tmp_path / "out"),
        "--no-visualize",
        "--agegender",
        "dlib",
    ]
    up = faces_process(*stack, env=NO_URL, piped=True)
    try:
        wait_until(
            lambda: (
                (state / "logs" / "sink-0.ready").exists()
                and all((state / "logs" / f"{s}-0.ready").exists() for s in ("detect", "landmarks", "agegender"))
            ),
            timeout_s=120,
            what="every worker ready",
        )
        sent = faces_cli("submit", str(DATA / "group.jpg"), "--state-dir", str(state), "--wait", env=NO_URL)
        assert sent.returncode == exits.OK, sent.stderr
        client = redis_py.Redis(unix_socket_path=str(state / "redis.sock"))
        client.xgroup_destroy("faces:images", "detect")
        client.close()
        code = up.wait(timeout=120)
    finally:
        if up.poll() is None:
            up.kill()
    stderr = up.stderr.read()
    assert code == exits.FAILED
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: the detect worker stopped: ") and "faces recreate-group detect" in last, last


@pytest.mark.parametrize("command", [["status"], ["submit", str(DATA / "group.jpg")], ["watch", str(DATA)]])
def test_commands_that_need_a_pipeline_never_start_redis(tmp_path, command):
    state = tmp_path / "s"
    done = faces_cli(*command, "--state-dir", str(state), env=NO_URL, timeout=60)
    assert done.returncode == exits.FAILED
    assert one_error_line(done) == (
        f"error: no pipeline is running for state dir {state}: start one with "
        f"`faces up --state-dir {state}` (in another terminal), or pass --redis-url"
    )
    assert not (state / "redis.sock").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["/nope/x.jpg"], "error: /nope/x.jpg: no such file or folder"),
        (
            [str(DATA / "README.md")] if (DATA / "README.md").exists() else [str(REPO / "pyproject.toml")],
            "error: no images under",
        ),
    ],
)
def test_submit_of_nothing_is_an_error(tmp_path, redis_url, args, expected):
    done = faces_cli("submit", *args, "--redis-url", redis_url, timeout=60)
    assert done.returncode == exits.FAILED
    assert one_error_line(done).startswith(expected)


@pytest.mark.parametrize(
    "args, code, expected",
    [
        (
            ["status", "--redis-url", "redis://127.0.0.1:1/0"],
            exits.FAILED,
            "error: cannot reach Redis at redis://127.0.0.1:1/0: Error 111 connecting to 127.0.0.1:1. Connection refused.",
        ),
        (
            ["status", "--redis-url", "notaurl"],
            exits.USAGE,
            "error: Invalid value for '--redis-url' (env var FACES_REDIS_URL, REDIS_URL): Redis URL must specify one of "
            "the following schemes (redis://, rediss://, unix://); e.g. redis://localhost:6379/0 (see `faces status --help`)",
        ),
        (
            ["submit", str(DATA), "--redis-url", "redis://:wrong@127.0.0.1:1/0"],
            exits.FAILED,
            "error: cannot reach Redis at redis://:***@127.0.0.1:1/0",
        ),
        (
            ["status", "--watch", "-1"],
            exits.USAGE,
            "error: Invalid value for '--watch': Input should be greater than or equal to 0.1 (see `faces status --help`)",
        ),
        (["run", str(DATA), "--batch", "0"], exits.USAGE, "error: Invalid value for '--batch'"),
        (
            ["run", str(DATA), "--workers", "detekt=2"],
            exits.USAGE,
            "error: Invalid value for '--workers' (env var FACES_WORKERS): --workers 'detekt=2': unknown stage 'detekt'; "
            "the stages are detect, landmarks, agegender, embed, sink (e.g. detect=2,agegender=1, or auto)",
        ),
        (
            ["up", "--workers", "sink=0"],
            exits.USAGE,
            "error: Invalid value for '--workers' (env var FACES_WORKERS): --workers 'sink=0': sink needs a whole number "
            "of workers from 1 up, e.g. sink=2",
        ),
        (
            ["worker", "bogus"],
            exits.USAGE,
            "error: unknown stage 'bogus'; expected one of detect, landmarks, agegender, embed, sink",
        ),
        (
            ["health", "--stage", "bogus"],
            exits.USAGE,
            "error: unknown stage 'bogus'; expected one of detect, landmarks, agegender, embed, sink, watch",
        ),
        (["frobnicate"], exits.USAGE, "error: No such command 'frobnicate'. (see `faces --help`)"),
        (["run"], exits.USAGE, "error: Missing argument 'paths'. (see `faces run --help`)"),
    ],
)
def test_mistakes_get_one_line_and_the_documented_exit_code(args, code, expected):
    done = faces_cli(*args, env=NO_URL, timeout=60)
    assert done.returncode == code, done.stderr
    assert one_error_line(done).startswith(expected)


def test_a_redis_refusing_the_password_is_one_line(tmp_path, redis_client, redis_url):
    redis_client.config_set("requirepass", "right")
    try:
        done = faces_cli("status", "--redis-url", redis_url.replace("unix://", "unix://:wrong@"), timeout=60)
    finally:
        redis_client.execute_command("AUTH", "right")
        redis_client.config_set("requirepass", "")
    assert done.returncode == exits.FAILED
    line = one_error_line(done)
    assert "***" in line and "wrong" not in line and ("password" in line.lower() or "WRONGPASS" in line), line


def test_ctrl_c_while_a_worker_waits_for_redis_is_a_clean_stop(tmp_path):
    worker, lines = started_until_logged(
        [
            "worker",
            "sink",
            "--no-visualize",
            "--storage",
            str(tmp_path / "out"),
            "--redis-url",
            "redis://127.0.0.1:1/0",
        ],
        "redis.waiting",
    )
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=30) == exits.OK
    rest = worker.stderr.read()
    assert "Traceback" not in rest
    for line in [*lines, *rest.splitlines()]:
        if line.strip():
            json.loads(line)  # every line a JSON log record


def test_debug_shows_the_traceback_of_a_failure(tmp_path):
    for env, args in (({"FACES_DEBUG": "1"}, ["status"]), ({}, ["--debug", "status"])):
        done = faces_cli(*args, "--redis-url", "redis://127.0.0.1:1/0", env=env, timeout=60)
        assert done.returncode != exits.OK
        assert "Traceback (most recent call last)" in done.stderr and "RedisUnavailable" in done.stderr


def test_version():
    done = faces_cli("--version", timeout=30)
    assert done.returncode == exits.OK
    assert done.stdout.startswith("faces ")


def test_run_writes_absolute_paths_keeps_current_results_and_reanalyses_with_force(tmp_path):
    photos = tmp_path / "photos"
    photo_variants(photos, 2)
    storage = tmp_path / "storage"
    base = run_args("photos", tmp_path / "s", storage, "--no-visualize", "--agegender", "dlib")
    first = faces_cli(*base, env=NO_URL, cwd=tmp_path)
    assert first.returncode == exits.OK, first.stderr
    results = result_files(storage)
    assert sorted(r["image"]["path"] for r in results.values()) == [str(p) for p in sorted(photos.glob("*.jpg"))]
    assert all(Path(r["image"]["path"]).is_absolute() for r in results.values())

    again = faces_cli(*base, env=NO_URL, cwd=tmp_path)
    assert again.returncode == exits.OK, again.stderr
    assert again.stdout.startswith("2 images already had a current result")
    assert not (tmp_path / "s" / "logs" / "detect-0.log").read_text().count("worker.ready") > 1, (
        "the second run started workers for nothing"
    )
    assert {k: r["job_id"] for k, r in result_files(storage).items()} == {k: r["job_id"] for k, r in results.items()}

    forced = subprocess.run(
        [sys.executable, "-m", "faces", *base, "--force"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **NO_URL},
    )
    assert forced.returncode == exits.OK, forced.stderr
    assert forced.stdout.startswith("2 images: 2 ok")
    renewed = result_files(storage)
    assert all(renewed[k]["job_id"] != r["job_id"] and renewed[k]["status"] == "ok" for k, r in results.items())


def test_run_against_a_redis_with_other_workers_gets_every_result_into_its_own_storage(tmp_path, redis_url):
    """Another stack's sink processes some of run's images and writes them into ITS storage;
    run still ends with every one of its images' results in its own."""
    other = WorkerPool(
        redis_url,
        tmp_path / "other-logs",
        grace_s=10,
        extra_args={
            "*": ["--storage", str(tmp_path / "other-storage"), "--block-ms", "100", "--agegender", "dlib"],
            "sink": ["--no-visualize"],
        },
    )
    other.start()
    try:
        wait_until(lambda: other.supervise() or not other.waiting_for(), timeout_s=120, what="other stack ready")
        photos = photo_variants(tmp_path / "photos", 4)
        done = faces_cli(
            "run",
            str(tmp_path / "photos"),
            "--redis-url",
            redis_url,
            "--state-dir",
            str(tmp_path / "s"),
            "--storage",
            str(tmp_path / "mine"),
            "--output",
            str(tmp_path / "pictures"),
            "--agegender",
            "dlib",
            "--batch",
            "1",
            timeout=300,
        )
    finally:
        other.stop()
    assert done.returncode == exits.OK, done.stderr
    assert done.stdout.startswith("4 images: 4 ok")
    mine = result_files(tmp_path / "mine")
    assert sorted(r["image"]["path"] for r in mine.values()) == [str(p) for p in photos]
    assert all(r["status"] == "ok" for r in mine.values())
    assert len(list((tmp_path / "pictures").glob("*.jpg"))) == 4
    # The point of the test: the other stack did take part.
    assert result_files(tmp_path / "other-storage"), "the other stack processed nothing; the test proves nothing"


def _ctrl_c_not_ignored() -> None:
    """A test run started in the background (`make test &` from a script) inherits SIGINT ignored,
    as a shell's background jobs do, and Python keeps it ignored: the run would never see the
    Ctrl-C this test sends. The child gets the default back, as in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_run_says_what_was_done_and_what_is_left(tmp_path):
    # Enough photos that the run cannot finish between its first result and the Ctrl-C: with
    # two detect workers 40 of them were all done before the signal arrived.
    photo_variants(tmp_path / "photos", 400)
    storage = tmp_path / "storage"
    run = faces_process(
        *run_args(
            tmp_path / "photos", tmp_path / "s", storage, "--no-visualize", "--batch", "1", "--agegender", "dlib"
        ),
        env=NO_URL,
        piped=True,
        preexec_fn=_ctrl_c_not_ignored,
    )
    wait_until(lambda: len(list(storage.glob("*.json"))) >= 1, timeout_s=180, what="a first result")
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert run.returncode == exits.INTERRUPTED, err
    assert "Traceback" not in out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and " of 400 images have results" in last and "left" in last, last


def test_broken_deepface_weights_are_said_in_runs_summary_and_the_result(tmp_path):
    """`auto` falls back to the bundled model when DeepFace's files are there but unreadable:
    the summary warns, the result's notes say why, the worker logged it at warning on start."""
    from tests.fixtures_models import write_broken_deepface_weights

    home = tmp_path / "deepface"
    write_broken_deepface_weights(home)
    storage = tmp_path / "storage"
    done = faces_cli(
        *run_args(DATA / "group.jpg", tmp_path / "s", storage, "--no-visualize"),
        env={**NO_URL, "DEEPFACE_HOME": str(home)},
        timeout=300,
    )
    assert done.returncode == exits.OK, done.stderr
    [result] = result_files(storage).values()
    note = result["notes"]["agegender"]
    assert note["status"] == "weights_unreadable" and result["faces"][0]["age"] is not None
    assert f"  warning: {note['message']}" in done.stdout.splitlines()
    events = [json.loads(line) for line in (tmp_path / "s" / "logs" / "agegender-0.log").read_text().splitlines()]
    assert any(e["event"] == "agegender.deepface_unavailable" and e["level"] == "warning" for e in events)


def test_watch_stops_at_once_on_sigterm(tmp_path, redis_url):
    """A container's PID 1 gets SIGTERM: the watcher stops and says what it did, no grace wait."""
    (tmp_path / "inbox").mkdir()
    watch, _lines = started_until_logged(["watch", str(tmp_path / "inbox"), "--redis-url", redis_url], "watch.started")
    watch.send_signal(signal.SIGTERM)
    assert watch.wait(timeout=10) == exits.OK
    rest = watch.stderr.read()
    assert "Traceback" not in rest
    assert rest.strip().splitlines()[-1] == "published 0; 0 duplicates skipped"


TRIPWIRE_WORKER = '''
import os, signal, sys
from faces import logs
from faces.ops.supervise.worker import run_worker
from faces.streams.settings import RuntimeSettings

class Tripwire:
    """stderr that sends this process SIGTERM from inside the write of a `redis.waiting` line:
    the signal handler then runs while the logger holds its write lock."""
    def __init__(self, inner):
        self.inner, self.fired = inner, False
    def write(self, text):
        if not self.fired and "redis.waiting" in text:
            self.fired = True
            os.kill(os.getpid(), signal.SIGTERM)
        return self.inner.write(text)
    def flush(self):
        self.inner.flush()
    def isatty(self):
        return False

sys.stderr = Tripwire(sys.stderr)
logs.configure()
code = run_worker("sink", "redis://127.0.0.1:1/0", RuntimeSettings(grace_s=60), "tripwire",
                  {"storage": sys.argv[1], "output": None})
print("exit", code, flush=True)
'''


def test_a_stop_signal_arriving_during_a_log_write_does_not_deadlock_the_worker(tmp_path):
    """The signal handler used to log, and so waited forever for the lock of the write it had
    interrupted: the worker only left when the grace period expired (exit 4)."""
    done = subprocess.run(
        [sys.executable, "-c", TRIPWIRE_WORKER, str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout.strip() == "exit 0", done.stderr
