"""Small real stages for testing the runtime alone (the analysis stages have their own tests).

They implement the same Stage protocol the analysis adapters do; they are not stand-ins for
them, and no test calls them finished analysis.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from faces.streams import names
from faces.streams.outcomes import Delivery, Forward, Outcome, Reject


class Poison(RuntimeError):
    """Raised by PickyStage for the image it is told to choke on."""


@dataclass
class PickyStage:
    """Forwards jobs, recording what it saw; raises for `poison_image` (always) and
    `flaky_image` (first attempt), rejects `reject_image`; sleeps `delay_s` per batch (to be
    caught mid-batch); waits for `gate`, when given, in every batch (a call that hangs until
    the test lets it go)."""

    route: names.StageRoute = field(default_factory=lambda: names.route("detect"))
    needs_image: bool = False
    poison_image: str | None = None
    reject_image: str | None = None
    flaky_image: str | None = None  # fails on its first attempt only
    delay_s: float = 0.0
    slow_image: str | None = None  # with it, only batches holding this image sleep delay_s
    gate: threading.Event | None = None  # with it, every batch waits until it is set (a hung call)
    seen: list[tuple[str, int]] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        with self.lock:
            self.batches.append(len(deliveries))
            self.seen.extend((d.job["image_id"], d.attempt) for d in deliveries)
        if self.gate is not None:
            self.gate.wait()
        if self.delay_s and (self.slow_image is None or any(d.job["image_id"] == self.slow_image for d in deliveries)):
            time.sleep(self.delay_s)
        out: list[Outcome] = []
        for d in deliveries:
            if d.job["image_id"] == self.poison_image:
                raise Poison(f"cannot handle {d.job['image_id']}")
            if d.job["image_id"] == self.flaky_image and d.attempt == 1:
                raise Poison(f"first attempt at {d.job['image_id']} fails")
            if d.job["image_id"] == self.reject_image:
                out.append(Reject("Rejected", "this image is refused"))
            else:
                out.append(Forward(d.job))
        return out
