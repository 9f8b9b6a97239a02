"""Turning a failure into the one line a user reads and the exit code (ops/exits.py).

Our own errors already say the cause and the remedy in their message; failures raised by the
libraries underneath (redis-py, the file system) are reworded here, once for every command."""

from __future__ import annotations

import redis

from faces.errors import FacesError
from faces.ops import exits


def describe_failure(exc: BaseException) -> tuple[int, str]:
    """(exit code, one line without traceback) for any exception a command let escape."""
    if isinstance(exc, FacesError) and not exc.internal and not _system_worded(exc):
        return exc.exit_code, _one_line(str(exc))  # our own: its message is written for the user
    if isinstance(exc, redis.AuthenticationError) or _is_auth_refusal(exc):
        return exits.FAILED, (
            f"Redis refused our credentials ({_one_line(str(exc))}); "
            "put the right user and password in --redis-url / FACES_REDIS_URL"
        )
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return exits.FAILED, (
            f"lost the connection to Redis ({_one_line(str(exc))}); check that it is running, then try again"
        )
    if isinstance(exc, redis.ResponseError):
        return exits.FAILED, f"Redis answered with an error: {_one_line(str(exc))}"
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return exits.FAILED, f"{exc.strerror}{where}"
    return exits.FAILED, (
        f"unexpected {type(exc).__name__}: {_one_line(str(exc))} (run with --debug or FACES_DEBUG=1 for the traceback)"
    )


def _system_worded(exc: FacesError) -> bool:
    """An OSError of ours made with an errno and a file (NotARegularFile) reads as the system's do."""
    return isinstance(exc, OSError) and bool(exc.strerror)


def _is_auth_refusal(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, redis.ResponseError) and text.startswith(("NOAUTH", "WRONGPASS", "NOPERM"))


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"
