"""A real `faces worker` process that, on its first start only, gets a SIGTERM before it has set
its own signal handler, for tests/runtime/test_pool_crashes.py.

Run as `python -m tests.early_sigterm_worker MARKER ARGS...`, ARGS being those of `faces worker`.
Without the file MARKER, it creates it and sends itself SIGTERM at the moment `run_worker`
starts, when only the CLI's handler is set (what a `faces up` stopped in a worker's first half
second does): the CLI turns it into exit 130, deterministically, with no aim at a time window.
With MARKER present it is the plain worker.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from faces.ops.cli import main
from faces.ops.supervise import worker as worker_process

if __name__ == "__main__":
    marker = Path(sys.argv[1])
    if not marker.exists():
        marker.touch()
        real_run_worker = worker_process.run_worker

        def signalled_first(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)  # handled at once, by the CLI's handler
            return real_run_worker(*args, **kwargs)

        worker_process.run_worker = signalled_first
    main(["worker", *sys.argv[2:]])
