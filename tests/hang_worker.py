"""A real `faces worker` process whose stage call hangs, for tests/runtime/test_hang_batch.py.

Run as `python -m tests.hang_worker ARGS...`, ARGS being those of `faces worker`. Everything is
the real worker (CLI, settings from options and FACES_* variables, signals, ready file, the
consumer loop) except the stage it builds: a PickyStage (tests/stages.py) whose batches block
for ever as soon as one holds an image whose id starts with HANG_PREFIX, as a model call that
never returns would. Tests that run it in threads of their own process give it an event that
lets the hung calls return when the test ends.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from faces.ops.cli import main
from faces.ops.supervise import worker as worker_process
from faces.streams.outcomes import Delivery, Forward, Outcome
from tests.stages import PickyStage

HANG_PREFIX = "hang"


@dataclass
class HangingStage(PickyStage):
    """Forwards every job, but does not return from a batch holding a HANG_PREFIX image until
    `release` is set (never, in a worker process). Records every batch it is handed (`seen`)."""

    release: threading.Event = field(default_factory=threading.Event)

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        if any(d.job["image_id"].startswith(HANG_PREFIX) for d in deliveries):
            with self.lock:
                self.seen.extend((d.job["image_id"], d.attempt) for d in deliveries)
            self.release.wait()
            return [Forward(d.job) for d in deliveries]
        return super().handle(deliveries)


def build_hanging(_stage: str, _options: dict) -> HangingStage:
    return HangingStage()


if __name__ == "__main__":
    worker_process.build_stage = build_hanging  # the stage this worker runs; nothing else changes
    main(["worker", *sys.argv[1:]])
