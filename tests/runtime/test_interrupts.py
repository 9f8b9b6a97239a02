"""A Ctrl-C is never lost, even when its KeyboardInterrupt lands inside a destructor.

CI, 2026-11-28: `faces run` ignored a Ctrl-C for 120 s. The signal arrived while redis-py's
reply parser was being garbage-collected; Python raised the KeyboardInterrupt in its `__del__`,
printed "Exception ignored" and dropped it, and the job went on waiting for results."""

from __future__ import annotations

import os
import signal
import time

import pytest

from faces.ops import interrupts
from faces.ops.jobs.run import JobOptions, JobSummary, wait_for_results
from faces.ops.settings import AppSettings
from faces.streams import results


class _CtrlCInDestructor:
    """Sends this process a Ctrl-C from its `__del__`: os.kill runs the handler at once, so the
    KeyboardInterrupt is raised inside the destructor, where Python swallows it."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def handlers_restored():
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGINT, saved[0])
    signal.signal(signal.SIGTERM, saved[1])


# The swallowed exception's "Exception ignored ... Traceback" report reaches pytest as this warning.
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_swallowed_by_a_destructor_still_stops_the_wait_for_results(redis_client, tmp_path, handlers_restored):
    interrupts.install()
    sent = []

    def ctrl_c_while_collecting(done: int, total: int) -> None:
        if not sent:
            sent.append(True)
            _CtrlCInDestructor()  # collected at once; the Ctrl-C dies with it

    app = AppSettings(redis_url="unused", state_dir=tmp_path, storage=tmp_path / "storage")
    started = time.monotonic()
    # A result that never comes: without the remembered request this waits the whole timeout.
    with pytest.raises(KeyboardInterrupt):
        wait_for_results(
            redis_client,
            {"job-that-never-ends": "a.jpg"},
            results.cursors_now(redis_client),
            JobSummary(submitted=1),
            None,
            JobOptions(timeout_s=20),
            ctrl_c_while_collecting,
            app,
        )
    assert sent == [True]
    assert time.monotonic() - started < 10, "the wait did not stop at its next pass"


def test_sigterm_is_a_stop_request_only_where_asked(handlers_restored):
    interrupts.install()
    assert signal.getsignal(signal.SIGTERM) is not interrupts._request_stop
    interrupts.install(sigterm=True)
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
    assert interrupts.requested()
    interrupts.install()  # a new command starts with no request pending
    assert not interrupts.requested()


def test_a_ctrl_c_ignored_by_the_shell_stays_ignored(handlers_restored):
    """A shell's background job starts with SIGINT ignored; `faces` keeps it so."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    interrupts.install()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
