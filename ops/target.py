"""Which Redis a command uses: the given URL, an embedded server already running for this state
directory (e.g. under `faces up`), or a new embedded server owned by this command."""

from __future__ import annotations

import contextlib
from typing import Iterator

import redis

from ops.settings import AppSettings
from streams.connection import connect
from streams.embedded import EmbeddedRedis, running_url


@contextlib.contextmanager
def redis_target(app: AppSettings) -> Iterator[tuple[str, redis.Redis, EmbeddedRedis | None]]:
    """(url, client, owned embedded server or None); the owned server stops on exit."""
    if app.redis_url:
        yield app.redis_url, connect(app.redis_url), None
        return
    url = running_url(app.state_dir)
    if url:
        yield url, connect(url), None
        return
    server = EmbeddedRedis(app.state_dir)
    url = server.start()
    try:
        yield url, connect(url), server
    finally:
        server.stop()
