"""The settings every `faces` command shares: where Redis, state, results and pictures are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AppSettings:
    redis_url: str | None      # None: the embedded server under state_dir
    state_dir: Path            # embedded Redis socket, AOF and worker logs
    storage: Path              # one JSON per image
    output: Path               # annotated pictures

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"
