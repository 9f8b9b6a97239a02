"""A real HTTP server of model weights for the download tests: Range requests, recorded requests,
answers cut short on demand (tests/models/test_weights.py, tests/cli/test_models_cli.py)."""

from __future__ import annotations

import http.server
import threading

import pytest


class _WeightsHandler(http.server.BaseHTTPRequestHandler):
    """Serves the server's ``files`` (URL name -> bytes) with HTTP Range support, records
    (name, Range header) of every request and the body bytes sent, and cuts the first
    ``cuts`` answers after half their body, like a dropped connection."""

    def do_GET(self):
        server, name = self.server, self.path.lstrip("/")
        server.requests.append((name, self.headers.get("Range")))
        body = server.files.get(name)
        if body is None:
            self.send_error(404)
            return
        start = int(self.headers["Range"][6:-1]) if self.headers.get("Range") else 0
        if start >= len(body) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self._send(body[start:])

    def _send(self, rest: bytes) -> None:
        if self.server.cuts > 0:
            self.server.cuts -= 1
            rest = rest[: len(rest) // 2]
            self.close_connection = True
        # Counted before writing: the client can finish reading before this thread runs again,
        # and a test asserting right after its fetch then saw the list one short (fresh clone).
        self.server.sent.append(len(rest))
        self.wfile.write(rest)
        self.wfile.flush()

    def log_message(self, *args):
        pass


class WeightsServer:
    """A real HTTP server on 127.0.0.1 for ``_WeightsHandler``; ``url`` is its base URL."""

    def __init__(self, files: dict[str, bytes], cuts: int = 0) -> None:
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WeightsHandler)
        self.http.files, self.http.cuts, self.http.requests, self.http.sent = files, cuts, [], []
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return self.http.requests

    @property
    def sent(self) -> list[int]:
        return self.http.sent

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def weights_server():
    """Factory: weights_server(files, cuts=0) -> a started WeightsServer, closed after the test."""
    servers = []

    def start(files: dict[str, bytes], cuts: int = 0) -> WeightsServer:
        servers.append(WeightsServer(files, cuts))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
