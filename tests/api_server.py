"""`faces serve` as the HTTP tests start it: one subprocess in front of a given Redis, its uploads,
storage and output in a test's folder, and a client of it. Shared by every test that talks to a
real API server (tests/web/, tests/cli/, tests/producer/)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from faces.streams.embedded import EmbeddedRedis
from tests.fixtures_redis import REDIS6, server_binary
from tests.images import DATA
from tests.pipeline import REPO
from tests.ports import free_port
from tests.waiting import wait_until

TOKEN = "test-token-0123456789abcdef"
MAX_BYTES = 2 << 20  # the API's --max-image-bytes in tests/web/test_http_api.py: small, so the 413 test streams little


@dataclass
class Api:
    """One `faces serve` process: its base URL, a client (with the token, if any), its log."""

    process: subprocess.Popen
    port: int
    folder: Path
    token: str | None = TOKEN
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=60)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / f"serve-{self.port}.log"

    def healthy(self) -> bool:
        assert self.process.poll() is None, f"faces serve exited {self.process.returncode}: {self.log.read_text()}"
        try:
            return httpx.get(self.base + "/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, grace_s: float = 15) -> None:
        """SIGTERM, then SIGKILL after `grace_s`: `faces serve` stops once the requests in hand
        are answered; a ?wait request is answered 202 at once (tests/web/test_http_stop_waiting.py)."""
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_api(
    redis_url: str,
    folder: Path,
    *args: str,
    token: str | None = TOKEN,
    env: dict[str, str] | None = None,
    open_files: int | None = None,
) -> Api:
    """`faces serve` on `redis_url` with its uploads, storage and output under `folder`, extra
    options `args`, environment `env` on top of ours and, if given, an open-files limit; returns
    once /healthz answers."""
    port = free_port()
    limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))) if open_files else None
    folders = [f"--{name}={folder / name}" for name in ("uploads", "storage", "output")]
    with open(folder / f"serve-{port}.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "faces", "serve", "--port", str(port), *folders, *args],
            cwd=REPO,
            env={**os.environ, "FACES_API_TOKEN": token or "", "FACES_REDIS_URL": redis_url, **(env or {})},
            stdout=log,
            stderr=log,
            preexec_fn=limit,
        )
    api = Api(process, port, folder, token)
    wait_until(api.healthy, timeout_s=30, what="the API to answer /healthz")
    return api


def photo(i: int, source: str = "astronaut.jpg") -> bytes:
    """A JPEG of data/SOURCE with bytes of its own after the end marker: its own sha256 and id."""
    return (DATA / source).read_bytes() + f"http test {i} {time.time_ns()}".encode()


def start_redis(folder: Path) -> EmbeddedRedis:
    """A private redis-server 6.2 under `folder`, started."""
    server = EmbeddedRedis(folder / "redis", binary=server_binary(REDIS6))
    server.start()
    return server


def error_of(response: httpx.Response, status: int) -> str:
    """The one-line message of a JSON error answer with `status`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"] or "error" in body, body
    assert "Traceback" not in body["error"] and "\n" not in body["error"]
    return body["error"]
