"""Ctrl-C and SIGTERM as a stop request that cannot be lost (`ops/cli/application.main` installs it for
every command; `faces worker` and `faces serve` then set their own handlers).

Python turns a signal into a KeyboardInterrupt raised at whatever line runs next. When that line
is inside a `__del__` (redis-py's reply parser, being garbage-collected, for one) the exception
is printed as "Exception ignored in ..." and dropped: `faces run` went on waiting for results
after a Ctrl-C until a CI run gave up on it 120 s later (2026-11-28). So the handler also
remembers the request, the loops that wait call `raise_if_requested()` on every pass, and the
dropped exception is not printed (the stop it stood for still happens).
"""

from __future__ import annotations

import signal
import sys
import threading

_requested = False
_print_unraisable = sys.unraisablehook


def _request_stop(_signum, _frame) -> None:
    global _requested
    _requested = True
    raise KeyboardInterrupt


def _drop_lost_interrupts(unraisable) -> None:
    """The "Exception ignored" report of a KeyboardInterrupt that a destructor swallowed: not
    printed (it would be a traceback for a plain Ctrl-C); `_requested` already holds the stop."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _requested:
        return
    _print_unraisable(unraisable)


def install(*, sigterm: bool = False) -> None:
    """Catch Ctrl-C (and SIGTERM with `sigterm`: `docker stop`, `kill`) as a remembered stop
    request. Only the main thread may set signal handlers; elsewhere this does nothing."""
    global _requested, _print_unraisable
    if threading.current_thread() is not threading.main_thread():
        return
    _requested = False
    # A shell's background job starts with Ctrl-C ignored; that is the shell's choice, kept.
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _request_stop)
    if sigterm:
        signal.signal(signal.SIGTERM, _request_stop)
    if sys.unraisablehook is not _drop_lost_interrupts:
        _print_unraisable = sys.unraisablehook
        sys.unraisablehook = _drop_lost_interrupts


def requested() -> bool:
    """Whether Ctrl-C (or SIGTERM) arrived since `install()`."""
    return _requested


def raise_if_requested() -> None:
    """Raise the KeyboardInterrupt again if a stop arrived but its exception was swallowed."""
    if _requested:
        raise KeyboardInterrupt
