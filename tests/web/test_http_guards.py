"""Issue 22, the HTTP front door under abuse: admission at the high-water mark is atomic with
the publish (item 1), a page on another site can neither upload nor read through DNS
rebinding, and an open bind needs a token (item 2), and slow clients are dropped while
/healthz answers (item 4). Real `faces serve` processes in front of a real Redis without
workers (what they publish stays in flight), raw sockets on 127.0.0.1 for the slow clients.

New settings are given by environment variable, so that the same test runs against the code
before them (where they are ignored) and shows the old behaviour failing."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from faces.streams import names
from faces.streams.connection import connect
from tests.api_server import error_of, photo, start_api, start_redis
from tests.pipeline import REPO
from tests.ports import free_port
from tests.waiting import wait_until

HIGH_WATER = 3
UPLOADERS = 20
SLOW_CLIENTS = 300
OPEN_FILES = 256  # the serving process's open-files limit in the slow-client test
HEAD_TIMEOUT_S = 2.0


@pytest.fixture
def redis_idle(tmp_path) -> Iterator:
    """A Redis with no workers, and a client of it."""
    server = start_redis(tmp_path)
    client = connect(server.url)
    yield server, client
    client.close()
    server.stop()


def raw_answer(sock: socket.socket, timeout_s: float = 30) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one HTTP/1.1 answer read from `sock`."""
    sock.settimeout(timeout_s)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the answer's body"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed `sock` (EOF or reset), without blocking."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


# -- item 1: admission at the high-water mark ------------------------------------------------


def test_concurrent_slow_uploads_never_put_more_than_the_high_water_mark_in_flight(tmp_path, redis_idle):
    """20 uploads whose bodies arrive in two halves, all heads in before any body is complete,
    against --high-water 3: exactly 3 are published and in flight (counted in Redis), every
    other upload is refused with 429 or 503 and Retry-After. Before, each upload checked for
    room when its head came (all saw 0 in flight) and published after its body: 20 in flight."""
    server, client = redis_idle
    api = start_api(server.url, tmp_path, "--high-water", str(HIGH_WATER), token=None)
    try:
        bodies = [photo(i) for i in range(UPLOADERS)]
        socks = [socket.create_connection(("127.0.0.1", api.port)) for _ in bodies]
        for sock, body in zip(socks, bodies):
            sock.sendall(
                f"POST /v1/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[: len(body) // 2]
            )
        for sock, body in zip(socks, bodies):
            try:
                sock.sendall(body[len(body) // 2 :])
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused at its head and closed: its answer is already there
        answers = [raw_answer(sock) for sock in socks]
        for sock in socks:
            sock.close()
    finally:
        api.stop()
    statuses = sorted(status for status, _h, _b in answers)
    assert client.scard(names.INFLIGHT) == HIGH_WATER, statuses
    assert client.xlen(names.IMAGES) == HIGH_WATER
    assert statuses.count(202) == HIGH_WATER, statuses
    refused = [(status, headers) for status, headers, _b in answers if status != 202]
    assert len(refused) == UPLOADERS - HIGH_WATER
    assert all(status in (429, 503) and headers.get("retry-after") for status, headers in refused), refused


# -- item 2: other sites, DNS rebinding, open binds ------------------------------------------


def test_foreign_hosts_are_refused_and_known_ones_answered(tmp_path, redis_idle):
    """A Host the server was not told (what a DNS-rebinding page sends) gets 400 on the page and
    the API; loopback names and FACES_HTTP_ALLOWED_HOSTS are answered; the probes answer any
    Host (orchestrators use IPs)."""
    server, _client = redis_idle
    api = start_api(server.url, tmp_path, token=None, env={"FACES_HTTP_ALLOWED_HOSTS": "faces.example.org"})
    http = httpx.Client(base_url=api.base, timeout=30)
    try:
        for path in ("/", "/v1/status", "/v1/results"):
            message = error_of(http.get(path, headers={"Host": f"rebound.example:{api.port}"}), 400)
            assert "rebound.example" in message and "--allowed-hosts" in message
        for host in (f"localhost:{api.port}", f"[::1]:{api.port}", "faces.example.org", f"127.0.0.1:{api.port}"):
            assert http.get("/", headers={"Host": host}).status_code == 200, host
        assert http.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200
    finally:
        http.close()
        api.stop()


def test_cross_site_uploads_are_refused_and_the_page_still_works(tmp_path, redis_idle):
    """A POST from another origin (any page can send one) gets 403 and publishes nothing; a
    same-origin POST (the bundled page's) and one without Origin (a program's) are accepted."""
    server, client = redis_idle
    api = start_api(server.url, tmp_path, token=None)
    http = httpx.Client(base_url=api.base, timeout=30)
    jpeg = {"Content-Type": "image/jpeg"}
    try:
        cross = http.post("/v1/images", content=photo(1), headers={**jpeg, "Origin": "http://evil.example"})
        assert "http://evil.example" in error_of(cross, 403)
        assert error_of(http.post("/v1/images", content=photo(2), headers={**jpeg, "Origin": "null"}), 403)
        assert client.xlen(names.IMAGES) == 0
        same = http.post("/v1/images", content=photo(3), headers={**jpeg, "Origin": api.base})
        assert same.status_code == 202, same.text
        assert http.post("/v1/images", content=photo(4), headers=jpeg).status_code == 202
        assert client.xlen(names.IMAGES) == 2
    finally:
        http.close()
        api.stop()


def test_serving_every_interface_without_a_token_is_refused_at_start(tmp_path):
    """`faces serve --host 0.0.0.0` with no FACES_API_TOKEN exits 2 with one line naming the
    fixes (a token, 127.0.0.1, or --allow-insecure-bind), before listening. Before, it served
    an open API to the network."""
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "faces",
                "serve",
                "--host",
                "0.0.0.0",
                "--port",
                str(free_port()),
                "--redis-url",
                "redis://127.0.0.1:1/0",
                "--uploads",
                str(tmp_path / "uploads"),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, "FACES_API_TOKEN": "", "FACES_HTTP_ALLOW_INSECURE_BIND": ""},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("faces serve --host 0.0.0.0 without a token started serving")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: --host 0.0.0.0 lets other machines reach the API")
    assert "FACES_API_TOKEN" in done.stderr and "--allow-insecure-bind" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_an_open_bind_allowed_without_a_token_warns_at_every_start(tmp_path, redis_idle):
    """With FACES_HTTP_ALLOW_INSECURE_BIND=1 (what compose sets, overridably) `faces serve --host
    0.0.0.0` serves, and says on stderr that anyone reaching the port can upload and read: the
    review found compose's hard-coded flag left an operator who widened the port mapping with an
    open API and no word of it."""
    server, _client = redis_idle
    api = start_api(server.url, tmp_path, "--host", "0.0.0.0", token=None, env={"FACES_HTTP_ALLOW_INSECURE_BIND": "1"})
    try:
        assert "warning: serving on 0.0.0.0 without FACES_API_TOKEN" in api.log.read_text()
    finally:
        api.stop()


# -- item 4: slow clients --------------------------------------------------------------------


def test_stalled_clients_are_dropped_while_healthz_answers_within_a_second(tmp_path, redis_idle):
    """300 connections that send half a request head and stall, against a server whose
    open-files limit is 256: /healthz still answers within a second, three times over, and
    the server closes every stalled connection (the oldest at once past its connection limit,
    the rest at the head timeout). Before, they were held for ever and /healthz timed out."""
    server, _client = redis_idle
    api = start_api(
        server.url, tmp_path, token=None, open_files=OPEN_FILES, env={"FACES_HTTP_HEAD_TIMEOUT_S": str(HEAD_TIMEOUT_S)}
    )
    stalled: list[socket.socket] = []
    try:
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", api.port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            stalled.append(sock)
        for _ in range(3):
            started = time.monotonic()
            try:
                answer = httpx.get(api.base + "/healthz", timeout=1.0)
            except httpx.TransportError as exc:
                pytest.fail(f"/healthz did not answer within 1 s beside {SLOW_CLIENTS} stalled clients: {exc!r}")
            assert answer.status_code == 200 and time.monotonic() - started < 1.0
        open_ones = lambda: [s for s in stalled if not closed_by_server(s)]  # noqa: E731
        wait_until(
            lambda: not open_ones(),
            timeout_s=HEAD_TIMEOUT_S + 10,
            interval_s=0.2,
            what=f"the server to close every stalled connection (head timeout {HEAD_TIMEOUT_S} s)",
        )
    finally:
        for sock in stalled:
            sock.close()
        api.stop()


def test_an_upload_body_that_stalls_gets_408_and_its_connection_closed(tmp_path, redis_idle):
    """A complete head, then half the body and silence: 408 once the body has been silent for
    --body-idle-s, the connection closed, nothing published. Before, the upload (and its
    connection) waited for ever."""
    server, client = redis_idle
    api = start_api(server.url, tmp_path, token=None, env={"FACES_HTTP_BODY_IDLE_S": "1"})
    body = photo(5)
    try:
        with socket.create_connection(("127.0.0.1", api.port)) as sock:
            sock.sendall(
                f"POST /v1/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:1000]
            )
            try:
                status, headers, text = raw_answer(sock, timeout_s=15)
            except TimeoutError:
                pytest.fail("no answer 15 s after the body stalled")
            assert status == 408 and b"--body-timeout-s" in text
            assert headers.get("connection") == "close"
            wait_until(lambda: closed_by_server(sock), timeout_s=10, what="the connection closed")
        assert client.xlen(names.IMAGES) == 0
    finally:
        api.stop()


def test_clients_waiting_for_results_never_take_the_connections_healthz_needs(tmp_path, redis_idle):
    """--max-connections 6 and 6 uploads with ?wait=30 against a pipeline with no workers (their
    results never come): at most 3 (half the limit) hold their connection waiting, the other 3
    are answered 202 at once, and /healthz answers 200 within a second, three times over. Before
    (review of item 4), the 6 waiters held every connection and /healthz got 503 for 30 s."""
    server, _client = redis_idle
    api = start_api(server.url, tmp_path, "--max-connections", "6", token=None)
    waiting = 6
    statuses: list[int] = []

    def upload(i: int) -> None:
        try:
            statuses.append(
                httpx.post(
                    api.base + "/v1/images?wait=30",
                    content=photo(i),
                    headers={"Content-Type": "image/jpeg"},
                    timeout=60,
                ).status_code
            )
        except httpx.TransportError:
            statuses.append(0)

    threads = [threading.Thread(target=upload, args=(i,), daemon=True) for i in range(waiting)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: len(statuses) == waiting // 2, timeout_s=20, what="3 uploads answered at once")
        assert statuses == [202] * (waiting // 2)
        for _ in range(3):
            started = time.monotonic()
            answer = httpx.get(api.base + "/healthz", timeout=1.0)
            assert answer.status_code == 200 and time.monotonic() - started < 1.0, answer.text
        assert len(statuses) == waiting // 2, "the other 3 are still waiting for their results"
    finally:
        # SIGTERM answers the 3 waiters 202 at once (tests/web/test_http_stop_waiting.py).
        api.stop(grace_s=1)
