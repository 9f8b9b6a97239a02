"""Fixtures that start a real redis-server: the same binary the embedded default runs."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import redis

from streams.connection import connect
from streams.embedded import EmbeddedRedis


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A private redis-server on a unix socket in a temp dir, AOF on; stopped after the test."""
    server = EmbeddedRedis(tmp_path / "redis-state")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = connect(redis_server.url)
    yield client
    client.close()
