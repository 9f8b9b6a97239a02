"""Settings of the consumer runtime, one object per worker process.

Built by the CLI from options and environment variables; every duration carries its unit in
its name. Bad combinations are refused when the object is built, not discovered at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from faces import settings as defaults
from faces.errors import FacesError
from faces.schemas.events import DEFAULT_MAX_EVENT_BYTES
from faces.streams.connection import SOCKET_TIMEOUT_S

# A blocking read must come back well before the client's socket timeout, or every idle read
# would time out and go through the reconnect path.
SOCKET_MARGIN_S = 5.0


class SettingsError(FacesError, ValueError):
    """A runtime setting is out of range or contradicts another.

    Cause: an option or FACES_* environment variable with an impossible value.
    Remedy: fix the value named in the message (`faces worker --help` lists them).
    """


@dataclass(frozen=True)
class RuntimeSettings:
    # Each default, and what the setting means, is in faces/settings.py.
    batch: int = defaults.BATCH
    block_ms: int = defaults.BLOCK_MS
    claim_idle_ms: int = defaults.CLAIM_IDLE_MS
    claim_every_s: float = defaults.CLAIM_EVERY_S
    max_deliveries: int = defaults.MAX_DELIVERIES
    retry_backoff_s: float = defaults.RETRY_BACKOFF_S
    reconnect_min_s: float = defaults.RECONNECT_MIN_S
    reconnect_max_s: float = defaults.RECONNECT_MAX_S
    grace_s: float = defaults.GRACE_S
    trim_every_s: float = defaults.TRIM_EVERY_S
    heartbeat_every_s: float = defaults.HEARTBEAT_EVERY_S
    retention_s: float = defaults.RETENTION_S
    result_ttl_s: int = defaults.RESULT_TTL_S
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    batch_limit_s: float = defaults.BATCH_LIMIT_S
    burst: bool = False  # exit once the input is drained (tests, one-shot jobs)

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise SettingsError(f"batch must be >= 1, got {self.batch}")
        if self.block_ms < 1:
            raise SettingsError(f"block_ms must be >= 1, got {self.block_ms}")
        if self.block_ms / 1000 > SOCKET_TIMEOUT_S - SOCKET_MARGIN_S:
            raise SettingsError(
                f"block_ms ({self.block_ms}) must stay below the {SOCKET_TIMEOUT_S:.0f} s socket "
                f"timeout minus {SOCKET_MARGIN_S:.0f} s, i.e. at most "
                f"{int((SOCKET_TIMEOUT_S - SOCKET_MARGIN_S) * 1000)}"
            )
        if self.result_ttl_s < 1:
            raise SettingsError(f"result_ttl_s must be >= 1, got {self.result_ttl_s}")
        if self.max_deliveries < 1:
            raise SettingsError(f"max_deliveries must be >= 1, got {self.max_deliveries}")
        if self.claim_idle_ms <= self.block_ms:
            # A consumer blocked in a read looks idle for block_ms; claiming below that would
            # steal entries from healthy consumers.
            raise SettingsError(f"claim_idle_ms ({self.claim_idle_ms}) must exceed block_ms ({self.block_ms})")
        if self.grace_s <= 0 or self.claim_every_s <= 0 or self.trim_every_s <= 0:
            raise SettingsError("grace_s, claim_every_s and trim_every_s must be positive")
        if not 0 < self.heartbeat_every_s < defaults.HEARTBEAT_STALE_S:
            raise SettingsError(f"heartbeat_every_s must be in (0, {defaults.HEARTBEAT_STALE_S:g})")
        if self.reconnect_min_s <= 0 or self.reconnect_max_s < self.reconnect_min_s:
            raise SettingsError("need 0 < reconnect_min_s <= reconnect_max_s")
        if self.retention_s < 0:
            raise SettingsError("retention_s must be >= 0")
        if self.batch_limit_s <= 0:
            raise SettingsError(f"batch_limit_s must be positive, got {self.batch_limit_s:g}")

    @property
    def blob_ttl_s(self) -> int:
        """How long the bytes of a job the sink gave up on are kept, for a dead-letter retry."""
        return int(self.retention_s) or defaults.DAY_S

    @property
    def renew_every_s(self) -> float:
        """How often a long batch re-claims its entries so no sibling takes them while alive."""
        return self.claim_idle_ms / 3000.0
