"""The settings every `faces` command shares: where Redis, state, results and pictures are.

Commands get them from their --redis-url, --state-dir, --storage and --output options
(ops/cli/options.py `with_settings`); the defaults are faces/settings.py's."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from faces import settings as defaults
from faces.settings import ModelSettings


@dataclass(frozen=True)
class AppSettings:
    redis_url: str | None = None  # None: the embedded server under state_dir
    state_dir: Path = defaults.STATE_DIR  # embedded Redis socket, AOF and worker logs
    storage: Path = defaults.STORAGE  # one JSON per image
    output: Path = defaults.OUTPUT  # annotated pictures
    # The user's runtime directory, where an embedded server's socket goes when the state dir's
    # path is too long for one (streams/embedded.py socket_path). Read here, at the edge.
    runtime_dir: Path | None = field(default_factory=lambda: runtime_dir_from(os.environ))
    # What the models take from the environment (DeepFace's home, the age/gender precision,
    # YuNet's file, TensorFlow's threads), read here at the edge and passed down to them.
    models: ModelSettings = field(default_factory=ModelSettings.from_environ)

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"


RUNTIME_DIR_ENV = "XDG_RUNTIME_DIR"


def runtime_dir_from(environ: Mapping[str, str]) -> Path | None:
    """$XDG_RUNTIME_DIR when it is an absolute path (the XDG spec ignores a relative one)."""
    value = environ.get(RUNTIME_DIR_ENV, "")
    return Path(value) if os.path.isabs(value) else None
