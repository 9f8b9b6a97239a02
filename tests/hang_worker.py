"""A real `faces worker` process whose stage call hangs, for tests/runtime/test_hang_batch.py.

Run as `python -m tests.hang_worker ARGS...`, ARGS being those of `faces worker`. Everything is
the real worker (CLI, settings from options and FACES_* variables, signals, ready file, the
consumer loop) except the stage it builds: a PickyStage (tests/stages.py) whose batches block
for ever as soon as one holds an image whose id starts with HANG_PREFIX, as a model call that
never returns would.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from faces.ops.cli import main
from faces.ops.supervise import worker as worker_process
from faces.streams.outcomes import Delivery, Outcome
from tests.stages import PickyStage

HANG_PREFIX = "hang"


class HangingStage(PickyStage):
    """Forwards every job, but never returns from a batch holding a HANG_PREFIX image."""

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        if any(d.job["image_id"].startswith(HANG_PREFIX) for d in deliveries):
            threading.Event().wait()
        return super().handle(deliveries)


def build_hanging(_stage: str, _options: dict) -> HangingStage:
    return HangingStage()


if __name__ == "__main__":
    worker_process.build_stage = build_hanging  # the stage this worker runs; nothing else changes
    main(["worker", *sys.argv[1:]])
