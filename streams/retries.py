"""The entries a consumer failed and takes again: when each is due, and why it failed last."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from faces.streams.groups import id_key


@dataclass
class RetrySchedule:
    """Failed entries wait `backoff_s`, doubling with each delivery; the last delivery allowed
    (`max_deliveries`) is due at once: it only dead-letters the entry, no need to wait for it."""

    backoff_s: float
    max_deliveries: int
    due: dict[str, float] = field(default_factory=dict)  # entry id -> monotonic time of next attempt
    last_error: dict[str, tuple[str, str]] = field(default_factory=dict)  # entry id -> (type, message)

    def __len__(self) -> int:
        return len(self.due)

    def ids(self) -> list[str]:
        return list(self.due)

    def take_now(self, entry_id: str) -> None:
        """Retry `entry_id` (held since this consumer last stopped, or just taken over from an
        idle consumer) at once, unless already due."""
        self.due.setdefault(entry_id, time.monotonic())

    def failed(self, entry_id: str, attempt: int, error: tuple[str, str]) -> None:
        self.last_error[entry_id] = error
        if attempt >= self.max_deliveries:
            self.due[entry_id] = time.monotonic()
        else:
            self.due[entry_id] = time.monotonic() + self.backoff_s * (2 ** (attempt - 1))

    def pop_due(self, now: float) -> str | None:
        """The oldest entry due by `now`, taken off the schedule (one at a time: any of them may
        be what crashes the worker)."""
        due = [i for i, t in self.due.items() if t <= now]
        if not due:
            return None
        entry_id = min(due, key=id_key)
        del self.due[entry_id]
        return entry_id

    def block_ms(self, now: float, block_ms: int) -> int:
        """How long a read may block without sleeping past the next retry."""
        if not self.due:
            return block_ms
        return max(1, min(block_ms, int((min(self.due.values()) - now) * 1000)))

    def pop_last_error(self, entry_id: str) -> tuple[str, str] | None:
        return self.last_error.pop(entry_id, None)

    def forget(self, entry_id: str) -> bool:
        """Drop `entry_id` (finished, or another consumer's now); True if a retry was waiting."""
        self.last_error.pop(entry_id, None)
        return self.due.pop(entry_id, None) is not None
