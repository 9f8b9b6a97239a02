"""Settings of the consumer runtime, one object per worker process.

Built by the CLI from options and environment variables; every duration carries its unit in
its name. Bad combinations are refused when the object is built, not discovered at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from faces.schemas.events import DEFAULT_MAX_EVENT_BYTES
from faces.streams.connection import SOCKET_TIMEOUT_S

# A blocking read must come back well before the client's socket timeout, or every idle read
# would time out and go through the reconnect path.
SOCKET_MARGIN_S = 5.0
DAY_S = 86400
DEFAULT_RETENTION_S = 7 * DAY_S    # images stream history kept for replay; also the dedupe window
DEFAULT_RESULT_TTL_S = 7 * DAY_S   # how long Redis keeps each image's latest result


class SettingsError(ValueError):
    """A runtime setting is out of range or contradicts another.

    Cause: an option or FACES_* environment variable with an impossible value.
    Remedy: fix the value named in the message (`faces worker --help` lists them).
    """


@dataclass(frozen=True)
class RuntimeSettings:
    batch: int = 8                   # entries read at once and given to the stage as one batch
    block_ms: int = 1000             # how long one read waits for new entries (also stop latency)
    claim_idle_ms: int = 60_000      # entries idle this long in a dead consumer are taken over
    claim_every_s: float = 5.0       # how often to look for such entries
    max_deliveries: int = 3          # deliveries before an entry goes to the dead-letter stream
    retry_backoff_s: float = 1.0     # first retry delay after a failure; grows with the attempt
    reconnect_min_s: float = 0.5     # first wait after losing Redis; doubles up to the max
    reconnect_max_s: float = 10.0
    grace_s: float = 30.0            # after SIGTERM: time to finish the batch in hand
    trim_every_s: float = 30.0       # how often the input stream is trimmed (safely)
    retention_s: float = DEFAULT_RETENTION_S  # how long the images stream keeps history for replay
    result_ttl_s: int = DEFAULT_RESULT_TTL_S  # how long Redis keeps each image's latest result (files stay)
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    burst: bool = False              # exit once the input is drained (tests, one-shot jobs)

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise SettingsError(f"batch must be >= 1, got {self.batch}")
        if self.block_ms < 1:
            raise SettingsError(f"block_ms must be >= 1, got {self.block_ms}")
        if self.block_ms / 1000 > SOCKET_TIMEOUT_S - SOCKET_MARGIN_S:
            raise SettingsError(
                f"block_ms ({self.block_ms}) must stay below the {SOCKET_TIMEOUT_S:.0f} s socket "
                f"timeout minus {SOCKET_MARGIN_S:.0f} s, i.e. at most "
                f"{int((SOCKET_TIMEOUT_S - SOCKET_MARGIN_S) * 1000)}")
        if self.result_ttl_s < 1:
            raise SettingsError(f"result_ttl_s must be >= 1, got {self.result_ttl_s}")
        if self.max_deliveries < 1:
            raise SettingsError(f"max_deliveries must be >= 1, got {self.max_deliveries}")
        if self.claim_idle_ms <= self.block_ms:
            # A consumer blocked in a read looks idle for block_ms; claiming below that would
            # steal entries from healthy consumers.
            raise SettingsError(
                f"claim_idle_ms ({self.claim_idle_ms}) must exceed block_ms ({self.block_ms})"
            )
        if self.grace_s <= 0 or self.claim_every_s <= 0 or self.trim_every_s <= 0:
            raise SettingsError("grace_s, claim_every_s and trim_every_s must be positive")
        if self.reconnect_min_s <= 0 or self.reconnect_max_s < self.reconnect_min_s:
            raise SettingsError("need 0 < reconnect_min_s <= reconnect_max_s")
        if self.retention_s < 0:
            raise SettingsError("retention_s must be >= 0")

    @property
    def blob_ttl_s(self) -> int:
        """How long the bytes of a job the sink gave up on are kept, for a dead-letter retry."""
        return int(self.retention_s) or DAY_S

    @property
    def renew_every_s(self) -> float:
        """How often a long batch re-claims its entries so no sibling takes them while alive."""
        return self.claim_idle_ms / 3000.0
