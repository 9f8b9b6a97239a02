"""One thread follows the results stream for the whole API process and wakes the requests that
wait for a result (?wait=), instead of each request polling Redis: 32 waiting uploads cost one
blocking XREAD, not 32 loops."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict

import redis
import structlog

from faces.ops.metrics import ApiMetrics
from faces.streams import results
from faces.streams.transient import Backoff

log = structlog.get_logger(__name__)

BLOCK_MS = 1000  # one XREAD waits this long: the thread notices a stop this fast
SUBMITTED_KEPT = 100_000  # submission times remembered for the latency histogram (oldest dropped)
# What a waiting request's future is settled with when the server stops (release_waiters): not a
# result status; the request answers 202 with its status URL at once.
STOPPING = "stopping"


class ResultFollower:
    """Follows announcements from when it starts; `expect` before publishing, then `wait`."""

    def __init__(self, client: redis.Redis, metrics: ApiMetrics):
        self.client = client
        self.metrics = metrics
        self._lock = threading.Lock()
        self._waiters: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        self._submitted: OrderedDict[str, float] = OrderedDict()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="result-follower", daemon=True)
        self._started = threading.Event()
        self._releasing = False  # the server is stopping: no request waits any more

    def start(self) -> None:
        self._thread.start()

    def wait_started(self, timeout_s: float) -> bool:
        """Wait until the follower knows where the results stream stands (False: Redis is not
        answering yet; it keeps trying, and a waiting request checks the stored result anyway)."""
        return self._started.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=BLOCK_MS / 1000 + 5)

    def expect(self, job_id: str, *, waiting: bool) -> asyncio.Future | None:
        """Note a job about to be published (for the latency histogram); with `waiting`, a future
        of this event loop resolved with the job's final status ("ok", "error", "dead")."""
        future = asyncio.get_running_loop().create_future() if waiting else None
        with self._lock:
            self._submitted[job_id] = time.monotonic()
            while len(self._submitted) > SUBMITTED_KEPT:
                self._submitted.popitem(last=False)
            if future is not None and self._releasing:
                future.set_result(STOPPING)
            elif future is not None:
                self._waiters[job_id] = (asyncio.get_running_loop(), future)
        return future

    def release_waiters(self) -> None:
        """The server is stopping: every request waiting for a result (?wait=) is answered now,
        202 with its status URL, instead of holding the shutdown until its wait ends (up to
        --wait-max-s, longer than a compose or systemd stop allows); later ones do not wait."""
        with self._lock:
            self._releasing = True
            waiters = list(self._waiters.values())
            self._waiters.clear()
        for loop, future in waiters:
            loop.call_soon_threadsafe(_settle, future, STOPPING)

    def forget(self, job_id: str, *, published: bool = True) -> None:
        """The waiter of `job_id` gave up (its timeout); not `published`: the job never will be."""
        with self._lock:
            self._waiters.pop(job_id, None)
            if not published:
                self._submitted.pop(job_id, None)

    def _run(self) -> None:
        backoff = Backoff()
        cursors = None
        while not self._stop.is_set():
            try:
                if cursors is None:
                    cursors = results.cursors_now(self.client)
                    self._started.set()
                for announced in results.follow(self.client, cursors, BLOCK_MS):
                    self._announce(announced)
                backoff.reset()
            except redis.RedisError as exc:
                delay = backoff.next()
                log.warning("results.follow_failed", error=str(exc) or type(exc).__name__, retry_in_s=delay)
                self._stop.wait(delay)
            except Exception:  # noqa: BLE001 - a dead follower would leave every ?wait to time out
                delay = backoff.next()
                log.exception("results.follow_crashed", retry_in_s=delay)
                self._stop.wait(delay)

    def _announce(self, announced: results.Announcement) -> None:
        self.metrics.results.labels(status=announced.status).inc()
        with self._lock:
            submitted = self._submitted.pop(announced.job_id, None)
            waiter = self._waiters.pop(announced.job_id, None)
        if submitted is not None:
            self.metrics.latency.observe(time.monotonic() - submitted)
        if waiter is not None:
            loop, future = waiter
            loop.call_soon_threadsafe(_settle, future, announced.status)


def _settle(future: asyncio.Future, status: str) -> None:
    if not future.done():
        future.set_result(status)
