"""Redis trouble that passes by itself, and how every caller waits it out: one rule
(`is_transient`) and one backoff (`Backoff`, `retry_transient`) for workers, producers and the
HTTP API alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import redis
import structlog

from faces import settings as defaults

log = structlog.get_logger(__name__)

T = TypeVar("T")

CALLBACK_EVERY_S = 0.2  # how often `while_waiting` runs during a long wait

# Replies that mean "Redis cannot take writes (or answer) right now", not "this request is
# wrong": out of memory under noeviction, a failed background save, a replica (e.g. during a
# failover), a server still loading its data, a replica cut from its master, a cluster slot
# moving, a server busy with a script. redis-py turns some codes into classes (and strips the
# code from the message); the others arrive as a plain ResponseError starting with the code,
# or, raised inside a Lua script on 6.2, wrapped as "Error running script ...: -OOM ...".
TRANSIENT_CODES = ("OOM", "MISCONF", "READONLY", "LOADING", "MASTERDOWN", "TRYAGAIN", "BUSY")
TRANSIENT_CLASSES = (
    redis.ConnectionError,  # includes BusyLoadingError (LOADING)
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
    redis.exceptions.MasterDownError,
)


def is_transient(exc: BaseException) -> bool:
    """True for a Redis error that passes by itself: a lost connection, a timeout, or a server
    answering one of TRANSIENT_CODES."""
    if isinstance(exc, TRANSIENT_CLASSES):
        return True
    if not isinstance(exc, redis.ResponseError):
        return False
    message = str(exc)
    # "BUSY " and not "BUSYGROUP": the code is the reply's first word.
    return message.split(" ", 1)[0] in TRANSIENT_CODES or any(f"-{code} " in message for code in TRANSIENT_CODES)


@dataclass
class Backoff:
    """Waits that start at `min_s` and double up to `max_s`; `reset` after a success."""

    min_s: float = defaults.RECONNECT_MIN_S
    max_s: float = defaults.RECONNECT_MAX_S
    delay_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.delay_s = self.min_s

    def next(self) -> float:
        """The wait before the next attempt (the one after is twice as long, up to max_s)."""
        delay, self.delay_s = self.delay_s, min(self.delay_s * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self.delay_s = self.min_s


def nothing() -> None:
    return None


def retry_transient(
    action: Callable[[], T],
    *,
    what: str,
    while_waiting: Callable[[], None] = nothing,
    min_s: float = defaults.RECONNECT_MIN_S,
    max_s: float = defaults.RECONNECT_MAX_S,
    give_up_after_s: float | None = None,
) -> T:
    """`action()`, retried with `Backoff(min_s, max_s)` for as long as it fails with a transient
    Redis error (`is_transient`); any other error is raised, and so is a transient one whose next
    wait would end past `give_up_after_s` (None: never). Logs one warning per failed attempt;
    `while_waiting()` runs every CALLBACK_EVERY_S while it waits.

    `action` must be safe to repeat: a reply lost on the wire leaves it unknown whether the
    attempt took effect."""
    backoff = Backoff(min_s, max_s)
    deadline = None if give_up_after_s is None else time.monotonic() + give_up_after_s
    while True:
        try:
            return action()
        except redis.RedisError as exc:
            if not is_transient(exc) or (deadline is not None and time.monotonic() + backoff.delay_s > deadline):
                raise
            delay = backoff.next()
            log.warning("redis.unavailable", during=what, error=str(exc) or type(exc).__name__, retry_in_s=delay)
        _sleep_running(delay, while_waiting)


def _sleep_running(seconds: float, while_waiting: Callable[[], None]) -> None:
    deadline = time.monotonic() + seconds
    while True:
        while_waiting()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(CALLBACK_EVERY_S, left))
