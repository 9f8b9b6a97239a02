"""Issue 23 item 2: one transient-error rule for workers, producers and the API. Redis replies
that say "not now" (MASTERDOWN: a replica cut from its master; TRYAGAIN: a cluster slot moving;
BUSY: a script running) are waited out by a producer too, as workers always did; before, they
were fatal to `faces submit` and the HTTP API.

The refusals are real replies on the wire: a TCP proxy on 127.0.0.1 in front of the test's Redis
answers the first publishes (EVALSHA/EVAL) with those errors itself, and passes everything else,
then everything, through to Redis."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import redis

from faces.producer.files import job_for
from faces.streams import names, publishing, transient
from tests.api_server import photo
from tests.pipeline import faces_cli
from tests.redis_errors import LASTING, PASSING
from tests.redis_proxy import UnixRedisProxy, recv

REFUSALS = [
    b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
    b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n",
    b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.\r\n",
]
SCRIPT_COMMANDS = (b"EVALSHA", b"EVAL")


class Refuser(UnixRedisProxy):
    """A TCP proxy on 127.0.0.1 to a Redis unix socket that answers the first len(`refusals`)
    script calls with those replies (in order) instead of passing them on. redis-py sends one
    command and waits for its reply outside pipelines, so answering from here keeps replies in
    order."""

    def __init__(self, redis_socket: Path, refusals: list[bytes]):
        self.refusals = list(refusals)
        self.refused = 0
        self.lock = threading.Lock()
        super().__init__(redis_socket)

    def relay(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
        threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _refusal(self, command: bytes) -> bytes | None:
        with self.lock:
            if command.upper() not in SCRIPT_COMMANDS or self.refused >= len(self.refusals):
                return None
            self.refused += 1
            return self.refusals[self.refused - 1]

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        buffer = b""
        while data := recv(client):
            buffer += data
            while (parsed := _one_command(buffer)) is not None:
                raw, name = parsed
                buffer = buffer[len(raw) :]
                refusal = self._refusal(name)
                try:
                    client.sendall(refusal) if refusal is not None else upstream.sendall(raw)
                except OSError:
                    return
        upstream.close()

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        while data := recv(upstream):
            try:
                client.sendall(data)
            except OSError:
                return
        client.close()


def _one_command(buffer: bytes) -> tuple[bytes, bytes] | None:
    """The first complete RESP command in `buffer` (its bytes, its name); None if incomplete."""
    end = buffer.find(b"\r\n")
    if end < 0:
        return None
    count, at, parts = int(buffer[1:end]), end + 2, []
    for _ in range(count):
        end = buffer.find(b"\r\n", at)
        if end < 0:
            return None
        size = int(buffer[at + 1 : end])
        if len(buffer) < end + 2 + size + 2:
            return None
        parts.append(buffer[end + 2 : end + 2 + size])
        at = end + 2 + size + 2
    return buffer[:at], parts[0]


def test_a_publish_waits_out_masterdown_tryagain_and_busy_and_publishes_once(tmp_path, redis_server, redis_client):
    """`publish_image` answered TRYAGAIN, then MASTERDOWN, then BUSY sends the publish again
    each time (with backoff) and publishes the job exactly once: one entry, one job in flight,
    its bytes stored. Before, the first TRYAGAIN was raised to the producer."""
    proxy = Refuser(redis_server.socket, REFUSALS)
    producer = redis.Redis.from_url(proxy.url)
    job = job_for(str(tmp_path / "a.jpg"), b"pixels")
    try:
        entry_id = publishing.publish_image(producer, job, b"pixels")
    finally:
        producer.close()
        proxy.close()
    assert proxy.refused == len(REFUSALS)
    assert [e[0].decode() for e in redis_client.xrange(names.IMAGES)] == [entry_id]
    assert redis_client.smembers(names.INFLIGHT) == {job["job_id"].encode()}
    assert redis_client.get(names.blob_key(job["job_id"])) == b"pixels"


def test_faces_submit_waits_out_the_three_replies_and_exits_0(tmp_path, redis_server, redis_client):
    """`faces submit` through the same refusals: exit 0, exactly one entry and one job in
    flight. Before, it exited with the TRYAGAIN error and published nothing."""
    path = tmp_path / "photo.jpg"
    path.write_bytes(photo(3))
    proxy = Refuser(redis_server.socket, REFUSALS)
    try:
        done = faces_cli("submit", str(path), "--redis-url", proxy.url)
    finally:
        proxy.close()
    assert done.returncode == 0, done.stderr
    assert proxy.refused == len(REFUSALS)
    assert redis_client.xlen(names.IMAGES) == 1
    assert redis_client.scard(names.INFLIGHT) == 1


def test_one_rule_tells_passing_replies_from_lasting_ones():
    """The one rule (streams/transient.py) takes the replies workers always waited out, also as
    the classes redis-py turns some of them into (their code stripped from the message), and
    inside a Lua script's error; a request error, BUSYGROUP or NOPERM is not transient."""
    assert [transient.is_transient(e) for e in PASSING] == [True] * len(PASSING)
    assert [transient.is_transient(e) for e in LASTING] == [False] * len(LASTING)


def test_backoff_doubles_to_its_cap_and_starts_over_on_reset():
    """Backoff(min, max): waits min, 2 min, ... up to max; reset starts over at min."""
    backoff = transient.Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5
