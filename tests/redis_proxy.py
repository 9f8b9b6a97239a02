"""A TCP proxy on 127.0.0.1 in front of a test's Redis unix socket, for tests that play a faulty
network peer (replies lost, transient refusals): the listener and the accept loop, shared; what
happens to the bytes is each subclass's `relay`."""

from __future__ import annotations

import socket
import threading
from pathlib import Path


class UnixRedisProxy:
    """Each client accepted gets its own upstream connection to `redis_socket`, handed to
    `relay(client, upstream)`, which starts the threads that move the bytes. Subclasses set
    their own state before calling this __init__: it starts accepting at once."""

    def __init__(self, redis_socket: Path):
        self.redis_socket = str(redis_socket)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.redis_socket)
            self.relay(client, upstream)

    def relay(self, client: socket.socket, upstream: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.listener.close()


def recv(sock: socket.socket) -> bytes:
    """The next bytes from `sock`; b"" once it is closed or broken."""
    try:
        return sock.recv(65536)
    except OSError:
        return b""
