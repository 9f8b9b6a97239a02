"""One stage worker process: what `faces worker STAGE` runs, and what a container runs."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

import redis
import structlog

from faces.consumers.registry import build_stage
from faces.ops import exits
from faces.ops.metrics import serve_worker_metrics
from faces.ops.supervise.pool import READY_FILE_ENV
from faces.streams.connection import connect, redact
from faces.streams.consumer import StageConsumer
from faces.streams.errors import GroupLost, RedisUnavailable
from faces.streams.settings import RuntimeSettings
from faces.streams.transient import Backoff

log = structlog.get_logger(__name__)


def default_consumer_name(stage: str) -> str:
    """Unique per process; give a stable `--consumer` to take back pending entries on restart."""
    return f"{stage}-{socket.gethostname()}-{os.getpid()}"


def connect_with_retry(url: str, settings: RuntimeSettings, stop: threading.Event) -> redis.Redis | None:
    """Connect, waiting with backoff while Redis is not up yet (containers start in any order);
    None when told to stop while waiting."""
    backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
    while True:
        try:
            return connect(url)
        except RedisUnavailable as exc:
            delay = backoff.next()
            log.warning("redis.waiting", url=redact(url), error=str(exc), retry_in_s=delay)
            if stop.wait(delay):
                return None


def announce_ready() -> None:
    """Create the file the supervising pool watches (ops/supervise/pool.py), when it gave one."""
    path = os.environ.get(READY_FILE_ENV)
    if path:
        with open(path, "w", encoding="ascii") as handle:
            handle.write(f"{os.getpid()}\n")


def run_worker(
    stage_name: str,
    url: str,
    settings: RuntimeSettings,
    consumer: str | None,
    options: dict,
    metrics_port: int | None = None,
) -> int:
    """Build the stage, consume until SIGTERM/SIGINT (or drained, in burst mode); exit code.
    With `metrics_port`, its counters are served for Prometheus (ops/metrics.py)."""
    consumer = consumer or default_consumer_name(stage_name)
    structlog.contextvars.bind_contextvars(stage=stage_name, consumer=consumer)
    stop = threading.Event()
    runner: list[StageConsumer] = []

    def on_signal(signum, _frame) -> None:
        if stop.is_set():
            return
        stop.set()
        for r in runner:
            r.request_stop()
        # Not logged here: the signal may have interrupted this very thread inside a log write,
        # which holds the logger's (non-reentrant) lock, and the handler would wait for it
        # forever. A thread waits for the write to finish instead.
        threading.Thread(
            target=log.info,
            args=("worker.stopping",),
            daemon=True,
            kwargs={"signal": signal.Signals(signum).name, "grace_s": settings.grace_s},
        ).start()
        # Past the grace period, leave at once: the entries in hand stay pending under this
        # consumer's name and are taken over by a sibling (or by this name when it restarts).
        timer = threading.Timer(settings.grace_s, _grace_expired)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if metrics_port:  # before the models load: a port in use fails at once
        serve_worker_metrics(metrics_port, stage_name, consumer, lambda: runner[0].counters if runner else None)
    started = time.perf_counter()
    stage = build_stage(stage_name, options)
    client = connect_with_retry(url, settings, stop)
    if client is None:
        log.info("worker.stopped", processed=0, note="stopped while waiting for Redis")
        return exits.OK
    log.info("worker.ready", redis=redact(url), load_s=round(time.perf_counter() - started, 2))
    announce_ready()
    consumer_loop = StageConsumer(client, stage, settings, consumer, on_overrun=_batch_overran)
    runner.append(consumer_loop)
    if stop.is_set():
        consumer_loop.request_stop()
    try:
        consumer_loop.run()
    except GroupLost as exc:
        log.error("worker.group_lost", error=str(exc))
        return exits.GROUP_LOST
    log.info("worker.stopped", processed=consumer_loop.processed)
    return exits.OK


def _batch_overran() -> None:
    """A batch ran past --batch-limit-s (the consumer logged which): exit at once to be replaced,
    since the stage call may never return. The pool restarts the worker without counting a crash;
    its entries, no longer renewed, go to a sibling or back to this name."""
    sys.stderr.flush()
    os._exit(exits.BATCH_OVERRUN)


def _grace_expired() -> None:
    log.warning("worker.grace_expired", note="in-flight entries handed back for claiming")
    os._exit(exits.GRACE_EXPIRED)
