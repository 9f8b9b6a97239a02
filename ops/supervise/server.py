"""The API as a child process: the `faces serve` that `faces up --serve` starts next to its workers,
on the stack's Redis, its log in the state dir's logs."""

from __future__ import annotations

import os
import subprocess
import sys

from faces.ops.settings import AppSettings

STOP_WAIT_S = 10  # how long `faces serve` may take to stop on SIGTERM before it is killed


def serve_args(settings: AppSettings, host: str, port: int, high_water: int) -> list[str]:
    """The command line of the `faces serve` that `faces up --serve` starts (checked before the
    stack starts by ops/cli/serve.py `check_server_process`, with the same arguments)."""
    return [
        "--host",
        host,
        "--port",
        str(port),
        "--high-water",
        str(high_water),
        "--state-dir",
        str(settings.state_dir),
        "--storage",
        str(settings.storage),
        "--output",
        str(settings.output),
    ]


def start_server_process(url: str, settings: AppSettings, host: str, port: int, high_water: int) -> subprocess.Popen:
    """`faces serve` as a child process on the stack's Redis (the URL passed in the environment,
    which `ps` does not show), its log in the state dir's logs."""
    from faces.streams.embedded import die_with_parent

    settings.log_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.log_dir / "serve.log", "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "faces", "serve", *serve_args(settings, host, port, high_water)],
            env={**os.environ, "FACES_REDIS_URL": url},
            stdout=log_file,
            stderr=log_file,
            preexec_fn=die_with_parent,
        )


def stop_server_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
