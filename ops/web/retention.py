"""How long the API keeps uploaded photos: as long as the results that point at them
(`--result-ttl-s`). One thread sweeps `--uploads` when the API starts and then at intervals."""

from __future__ import annotations

import threading
from pathlib import Path

import structlog

from faces.producer.keep import sweep_uploads

log = structlog.get_logger(__name__)

MAX_SWEEP_INTERVAL_S = 3600.0  # an expired upload outlives its result by at most this long


class UploadSweeper:
    """Deletes uploads older than `max_age_s`, at start and every `interval_s` after."""

    def __init__(self, folder: Path, max_age_s: float):
        self.folder = folder
        self.max_age_s = max_age_s
        # A short TTL is swept often enough to hold; a long one at least hourly.
        self.interval_s = min(MAX_SWEEP_INTERVAL_S, max(1.0, max_age_s / 10))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upload-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                deleted = sweep_uploads(self.folder, self.max_age_s)
                if deleted:
                    log.info("uploads.swept", deleted=deleted, older_than_s=self.max_age_s)
            except OSError as exc:  # a folder it may not read: say so, keep serving, try again later
                log.warning("uploads.sweep_failed", folder=str(self.folder), error=str(exc))
            if self._stop.wait(self.interval_s):
                return
