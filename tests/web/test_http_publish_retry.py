"""Issue 22, publishing (items 12 and 1): a publish whose reply is lost is sent again and
counts once (idempotent by job id), through `faces submit` and `faces serve`; and
`faces dlq retry --all` waits for room below the high-water mark like every producer.

The lost reply is real: a TCP proxy on 127.0.0.1 in front of the test's Redis passes the
publish through, waits until Redis has run it, then cuts the client's connection without the
reply (what a network drop or a restarted load balancer does)."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from faces.producer.files import job_for
from faces.streams import deadletters, names
from faces.streams.reading import PAYLOAD_FIELD
from tests.api_server import photo, start_api
from tests.dead_letters import plant_dead_letter
from tests.pipeline import faces_cli, faces_process
from tests.redis_proxy import UnixRedisProxy, recv
from tests.waiting import wait_until

HIGH_WATER = 2


class ReplyDropper(UnixRedisProxy):
    """A TCP proxy on 127.0.0.1 to a Redis unix socket. The first time a client sends bytes
    containing `trigger`, they are passed on and the replies held back; once `took_effect()`
    holds, the client's connection is cut: the reply never reaches it. (A NOSCRIPT reply, a
    script not yet loaded, is passed on: nothing ran, the client loads it and sends it again.)
    Later connections pass everything."""

    def __init__(self, redis_socket: Path, trigger: bytes, took_effect: Callable[[], bool]):
        self.trigger = trigger
        self.took_effect = took_effect
        self.cuts = 0
        super().__init__(redis_socket)

    def relay(self, client: socket.socket, upstream: socket.socket) -> None:
        held: list[bytes] = []
        holding = threading.Event()
        threading.Thread(target=self._up, args=(client, upstream, held, holding), daemon=True).start()
        threading.Thread(target=self._down, args=(upstream, client, held, holding), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, held: list[bytes], holding: threading.Event) -> None:
        seen = b""
        while data := recv(client):
            seen = (seen + data)[-(len(self.trigger) + 65536) :]
            if not self.cuts and not holding.is_set() and self.trigger in seen:
                holding.set()
                seen = b""
                threading.Thread(
                    target=self._cut_after_effect, args=(client, upstream, held, holding), daemon=True
                ).start()
            try:
                upstream.sendall(data)
            except OSError:
                return
        upstream.close()

    def _cut_after_effect(self, client, upstream, held: list[bytes], holding: threading.Event) -> bool:
        """Cut once the publish ran; False (replies passed on) when Redis answered NOSCRIPT."""
        wait_until(
            lambda: self.took_effect() or b"".join(held).startswith(b"-NOSCRIPT"),
            timeout_s=30,
            what="Redis to run the publish",
        )
        if self.took_effect():
            self.cuts += 1
            client.shutdown(socket.SHUT_RDWR)
            client.close()
            upstream.close()
            return True
        holding.clear()
        client.sendall(b"".join(held))
        held.clear()
        return False

    def _down(
        self, upstream: socket.socket, client: socket.socket, held: list[bytes], holding: threading.Event
    ) -> None:
        while data := recv(upstream):
            if holding.is_set():
                held.append(data)
                continue
            try:
                client.sendall(data)
            except OSError:
                return


def entries_of(client, job_id: str) -> int:
    return sum(1 for _id, fields in client.xrange(names.IMAGES) if job_id.encode() in fields[PAYLOAD_FIELD])


def test_faces_submit_whose_reply_is_lost_succeeds_and_publishes_once(tmp_path, redis_server, redis_client):
    """`faces submit` through a connection cut after Redis ran the publish: it sends the
    publish again, which adds nothing, and reports success (exit 0); exactly one entry and
    one job in flight. Before, it exited 1 ("lost the connection") for a job that was in the
    pipeline: a caller would submit it twice."""
    data = photo(1) + b"lost-reply-cli"
    path = tmp_path / "lost.jpg"
    path.write_bytes(data)
    proxy = ReplyDropper(redis_server.socket, b"lost-reply-cli", lambda: redis_client.xlen(names.IMAGES) >= 1)
    try:
        done = faces_cli("submit", str(path), "--redis-url", proxy.url)
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert done.returncode == 0, done.stderr
    assert redis_client.xlen(names.IMAGES) == 1
    [job_id] = [m.decode() for m in redis_client.smembers(names.INFLIGHT)]
    assert entries_of(redis_client, job_id) == 1


def test_an_upload_whose_publish_reply_is_lost_answers_202_and_publishes_once(tmp_path, redis_server, redis_client):
    """`faces serve` publishing an upload through a connection cut after Redis ran it: the
    API sends the publish again and answers 202 with the job that is in the pipeline, once.
    Before, it answered 503 "Redis unreachable" for an upload that was published."""
    proxy = ReplyDropper(redis_server.socket, b"lost-reply-http", lambda: redis_client.xlen(names.IMAGES) >= 1)
    api = start_api(proxy.url, tmp_path, token=None)
    try:
        answer = httpx.post(
            api.base + "/v1/images",
            content=photo(2) + b"lost-reply-http",
            headers={"Content-Type": "image/jpeg"},
            timeout=60,
        )
    finally:
        api.stop()
        proxy.close()
    assert proxy.cuts == 1
    assert answer.status_code == 202, answer.text
    assert redis_client.xlen(names.IMAGES) == 1
    assert entries_of(redis_client, answer.json()["job_id"]) == 1
    assert redis_client.smembers(names.INFLIGHT) == {answer.json()["job_id"].encode()}


def test_dlq_retry_all_waits_for_room_below_the_high_water_mark(tmp_path, redis_url, redis_client):
    """With the pipeline at its high-water mark (FACES_HIGH_WATER), `faces dlq retry --all`
    re-queues nothing while there is no room, then, once there is, re-queues the letter (its
    deletion in the same step) and exits 0; while it waits it says so, once, on stderr (the review
    found it blocked in silence). Before, it skipped the wait and re-queued at once."""
    path = tmp_path / "dead.jpg"
    path.write_bytes(b"pixels of a dead letter")
    job = job_for(str(path), path.read_bytes())
    plant_dead_letter(redis_client, job)
    redis_client.sadd(names.INFLIGHT, *[f"busy-{i}" for i in range(HIGH_WATER)])
    env = {"FACES_HIGH_WATER": str(HIGH_WATER)}
    retry = faces_process("dlq", "retry", "--all", "--redis-url", redis_url, env=env, piped=True)
    try:
        # While there is no room it says it waits, and has re-queued nothing.
        readable, _, _ = select.select([retry.stderr], [], [], 60)
        assert readable and retry.poll() is None, f"dlq retry ended without room: {retry.communicate()}"
        assert retry.stderr.readline().startswith(f"waiting for room: {HIGH_WATER} or more images are in flight")
        assert redis_client.xlen(names.IMAGES) == 0 and deadletters.count(redis_client) == 1
        redis_client.srem(names.INFLIGHT, "busy-0")
        out, err = retry.communicate(timeout=60)
    finally:
        if retry.poll() is None:
            retry.kill()
    assert retry.returncode == 0, err
    assert "waiting for room" not in err, "said once"
    assert redis_client.xlen(names.IMAGES) == 1 and deadletters.count(redis_client) == 0
    assert redis_client.scard(names.INFLIGHT) == HIGH_WATER
