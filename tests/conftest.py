"""Shared pytest set-up: fixtures live in small plugin modules, one per concern."""

import os
import signal

pytest_plugins = [
    "tests.fixtures_redis",
    "tests.fixtures_models",
    "tests.weights_server",
]

# Every `faces run` / `faces up` a test starts gets one worker per stage, not `--workers auto`
# (two detect workers on 2 cores): `make test` runs two tests at a time on a 2-core machine, and
# the extra processes took make test past 10 minutes on a fresh clone. tests/cli/test_worker_counts.py
# removes this to prove what auto starts; the pipeline behaves the same with any count.
os.environ.setdefault("FACES_WORKERS", "detect=1")

# Recognition (the embed stage) is on by default for users, off for the tests that do not look
# at it: dlib's descriptor costs 76 ms of CPU per face on these 2 cores, and most tests run the
# pipeline for other reasons. The tests of recognition turn it on (`--recognition`), and the
# documentation's blocks run with the user's defaults (tests/cli/test_docs_commands.py drops FACES_*).
os.environ.setdefault("FACES_RECOGNITION", "off")


def pytest_sessionfinish(session):
    """The synthetic DeepFace weights the workers shared (tests/fixtures_models.py): removed once,
    by the process that ran the session (the xdist controller, or the only process)."""
    if not hasattr(session.config, "workerinput"):
        from tests.fixtures_models import remove_synthetic_homes

        remove_synthetic_homes(session.config)


# A test run started in the background by a script (`make test &`, a CI runner's shell without job
# control) inherits SIGINT ignored, as a shell's background jobs do; every `faces` the tests start
# would inherit that too and never see the Ctrl-C the interrupt tests send (a fresh-clone run
# failed test_newcomer_rerun and test_interrupts so). The tests run as from a terminal: the
# default handler back, in this process and (as SIG_DFL) in every child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
