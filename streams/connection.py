"""Connecting to Redis from a URL, and showing a URL without its secrets."""

from __future__ import annotations

import redis
from redis.connection import parse_url

from faces import exits
from faces.errors import FacesError
from faces.streams.errors import RedisUnavailable
from faces.urls import misparsed_userinfo, scrubbed, shown

# Short socket timeouts would break BLOCKing reads; the runtime blocks at most block_ms,
# so reads get that plus this margin.
SOCKET_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0


def connect(url: str, *, check: bool = True) -> redis.Redis:
    """A client for `url` (redis://, rediss://, unix://, with user and password if given).

    Values are returned as bytes: events are msgpack. BadRedisUrl for a URL redis-py cannot
    use. With `check`, PING once and raise RedisUnavailable with the redacted URL if the server
    does not answer.
    """
    check_url(url)  # redis-py's own parse error would print a piece of a malformed password
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
    Works on the text, so a URL that redis-py would reject (a bad port, a password with an
    unencoded '/', '?' or '#') is still masked whole (`faces.urls.shown`).
    """
    return shown(url, secret_parameter=_is_password)


def _is_password(name: str) -> bool:
    return "password" in name


def check_url(url: str) -> None:
    """Raise BadRedisUrl unless redis-py can connect with `url`; the message never holds a
    piece of its password (redis-py's own would: a '/' in it makes the rest look like a port)."""
    if misparsed_userinfo(url):
        raise BadRedisUrl(
            f"the password in {redact(url)} holds a '/', '?' or '#', which must be percent-encoded "
            "(%2F, %3F, %23; and '%' itself as %25)"
        )
    try:
        parse_url(url)
    except ValueError as exc:
        raise BadRedisUrl(scrubbed(str(exc), url)) from None


class BadRedisUrl(FacesError, ValueError):
    """A Redis URL that redis-py cannot use.

    Cause: an unknown scheme, a port or database that is not a number, or a password with an
    unencoded '/', '?' or '#'. Remedy: fix the URL as the message says, e.g.
    redis://user:pass%2Fword@localhost:6379/0.
    """

    exit_code = exits.USAGE  # a bad value
