"""The settings every `faces` command shares: where Redis, state, results and pictures are.

Commands get them from their --redis-url, --state-dir, --storage and --output options
(ops/cli/options.py `with_settings`); the defaults are faces/settings.py's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faces import settings as defaults


@dataclass(frozen=True)
class AppSettings:
    redis_url: str | None = None  # None: the embedded server under state_dir
    state_dir: Path = defaults.STATE_DIR  # embedded Redis socket, AOF and worker logs
    storage: Path = defaults.STORAGE  # one JSON per image
    output: Path = defaults.OUTPUT  # annotated pictures

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"
