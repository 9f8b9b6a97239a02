"""Connecting to Redis from a URL, and showing a URL without its secrets."""

from __future__ import annotations

from urllib.parse import unquote

import redis

from faces.streams.errors import RedisUnavailable

# Short socket timeouts would break BLOCKing reads; the runtime blocks at most block_ms,
# so reads get that plus this margin.
SOCKET_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0


def connect(url: str, *, check: bool = True) -> redis.Redis:
    """A client for `url` (redis://, rediss://, unix://, with user and password if given).

    Values are returned as bytes: events are msgpack. With `check`, PING once and raise
    RedisUnavailable with the redacted URL if the server does not answer.
    """
    client = redis.Redis.from_url(
        url,
        decode_responses=False,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=30,
    )
    if check:
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError) as exc:
            raise RedisUnavailable(f"cannot reach Redis at {redact(url)}: {exc}") from exc
    return client


def redact(url: str) -> str:
    """The URL with every password replaced by ***, safe for logs and status output.

    Both places redis-py takes one from: the userinfo (`redis://user:pw@host`, also in
    `unix://user:pw@/path.sock`) and the query (`?password=pw`, any `*password*` parameter).
    Works on the text, so a URL that redis-py would reject (a bad port) is still masked.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    else:
        authority, slash, tail = rest.partition("/")
        userinfo, at, host = authority.rpartition("@")
        if at and ":" in userinfo:
            rest = f"{userinfo.split(':', 1)[0]}:***@{host}{slash}{tail}"
    head, question, query = rest.partition("?")
    if question:
        query, hash_, fragment = query.partition("#")
        query = "&".join(_redact_parameter(p) for p in query.split("&")) + hash_ + fragment
    return f"{scheme}{sep}{head}{question}{query}"


def _redact_parameter(parameter: str) -> str:
    name, equals, _value = parameter.partition("=")
    return f"{name}=***" if equals and "password" in unquote(name).lower() else parameter
