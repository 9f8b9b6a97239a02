"""The HTTP/1.1 connections of `faces serve`: uvicorn's h11 protocol, plus what it lacks against
clients that are slow on purpose (or just stuck).

- A request head must be complete within `head_timeout_s` of the connection opening or of the
  previous answer; else the connection is closed. uvicorn itself waits for ever for a head that
  stops half way (its keep-alive timer is cancelled by the first byte).
- At most `max_connections` are open. One more arriving drops the oldest connection that has
  no request in progress (still sending its head, or idle): a crowd of stalled clients cannot
  keep a real request, a probe's included, from being answered, and never holds more file
  descriptors than the limit. When every connection has a request in progress, the newcomer
  gets 503 at once.

The body of an upload has its own timeouts (ops/web/body.py): uvicorn hands the body to the
application, which alone knows how much it wants.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from faces.ops.web.errors import RETRY_AFTER_S


def _busy_answer(max_connections: int) -> bytes:
    body = json.dumps(
        {
            "error": f"the server has {max_connections} connections open, each with a request in "
            f"progress: retry in {RETRY_AFTER_S} s"
        }
    ).encode()
    return (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"retry-after: %d\r\ncontent-length: %d\r\n\r\n%s" % (RETRY_AFTER_S, len(body), body)
    )


def guarded_protocol(max_connections: int, head_timeout_s: float) -> type[H11Protocol]:
    """An h11 protocol class for uvicorn's `http=` with these limits."""

    class Guarded(H11Protocol):
        opened_at: float
        head_timer: asyncio.TimerHandle | None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            # (the ignore: uvicorn's own H11Protocol narrows asyncio's BaseTransport the same way)
            self.opened_at = time.monotonic()
            self.head_timer = None
            super().connection_made(transport)
            if self._open_count() > max_connections and not self._drop_oldest_idle():
                transport.write(_busy_answer(max_connections))
                transport.close()
                return
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()

        def between_requests(self) -> bool:
            """No request in progress: none yet, or the last one answered."""
            return self.cycle is None or self.cycle.response_complete

        def _arm_head_timer(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
            self.head_timer = self.loop.call_later(head_timeout_s, self._head_overdue)

        def _head_overdue(self) -> None:
            self.head_timer = None
            if self.between_requests() and not self.transport.is_closing():
                self.transport.close()

        def _open_count(self) -> int:
            # Connections already closing still count in uvicorn's set until the loop has run.
            return sum(1 for c in self.connections if not c.transport.is_closing())

        def _drop_oldest_idle(self) -> bool:
            idle = [
                c
                for c in self.connections
                if isinstance(c, Guarded) and c is not self and c.between_requests() and not c.transport.is_closing()
            ]
            if not idle:
                return False
            min(idle, key=lambda c: c.opened_at).transport.close()
            return True

    return Guarded


class ReleasingServer(uvicorn.Server):
    """uvicorn's server, which on SIGTERM or Ctrl-C first answers the requests waiting for a
    result (`release`: ResultFollower.release_waiters, each answered 202 with its status URL).
    uvicorn lets every open request finish before it stops, and a ?wait request would hold the
    stop for its whole wait, up to --wait-max-s."""

    def __init__(self, config: uvicorn.Config, release: Callable[[], None]) -> None:
        super().__init__(config)
        self._release = release

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)  # called only for the signals uvicorn stops on
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not serving yet, or no more: nobody waits
            return
        # The handler may have interrupted the loop's own thread while it held the follower's
        # lock: the release runs as the loop's next callback, not in here.
        loop.call_soon_threadsafe(self._release)
