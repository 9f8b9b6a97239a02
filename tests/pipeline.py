"""Helpers for tests that run the real stage workers as processes against a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from faces.streams import names

REPO = Path(__file__).resolve().parents[1]


def faces_cli(
    *args: str, env: dict | None = None, timeout: float = 300, cwd: Path = REPO
) -> subprocess.CompletedProcess:
    """Run `faces ARGS...` as a subprocess (the installed entry point's module form) in `cwd`.

    Fails the test when the command printed a Python traceback without debug on: every known
    failure is one line (issue 12), and this holds for every command any test runs."""
    env = {**os.environ, **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "faces", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )
    if env.get("FACES_DEBUG", "") in ("", "0") and "--debug" not in args:
        assert TRACEBACK not in done.stdout + done.stderr, f"faces {' '.join(args)} printed a traceback:\n{done.stderr}"
    return done


TRACEBACK = "Traceback (most recent call last)"


def burst_worker(
    stage: str, redis_url: str, storage: Path, *args: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`faces worker STAGE --burst` on `redis_url` (it ends once its stream is drained), results
    in `storage`, no annotated pictures, extra options `args`; run as faces_cli runs a command."""
    options = ("--redis-url", redis_url, "--block-ms", "100", "--storage", str(storage), "--no-visualize")
    return faces_cli("worker", stage, "--burst", *options, *args, env=env)


def run_args(target: str | Path, state: Path, storage: Path, *options: str) -> list[str]:
    """The words of `faces run TARGET` with its state (embedded Redis, logs) and results where the
    test says, then `options`."""
    return ["run", str(target), "--state-dir", str(state), "--storage", str(storage), *options]


def faces_process(
    *args: str, env: dict | None = None, cwd: Path = REPO, piped: bool = False, **popen: Any
) -> subprocess.Popen:
    """Start `faces ARGS...` as a subprocess and return at once (faces_cli waits for its end):
    in `cwd`, with our environment plus `env`; `piped`: its stdout and stderr are pipes read as
    text; `popen` are Popen's own options (stdout, start_new_session, ...)."""
    if piped:
        popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen([sys.executable, "-m", "faces", *args], cwd=cwd, env={**os.environ, **(env or {})}, **popen)


def result_files(storage: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(storage.glob("*.json"))}


def total_pending(client: redis.Redis) -> int:
    total = 0
    for stream in names.PIPELINE_STREAMS:
        try:
            total += sum(int(g["pending"]) for g in client.xinfo_groups(stream))
        except redis.ResponseError:
            pass
    return total


def announced_job_ids(client: redis.Redis) -> list[str]:
    return [f[b"job_id"].decode() for _, f in client.xrange(names.RESULTS)]


def consumer_pending(client: redis.Redis, stage: str, consumer: str) -> int:
    route = names.route(stage)
    try:
        rows = client.xinfo_consumers(route.input_stream, route.group)
    except redis.ResponseError:
        return 0
    return next((int(r["pending"]) for r in rows if r["name"].decode() == consumer), 0)


# PATH without any folder holding a redis-server: `faces run` then starts its embedded one.
PATH_WITHOUT_REDIS = os.pathsep.join(
    d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "redis-server").exists()
)
