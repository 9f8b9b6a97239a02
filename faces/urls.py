"""URLs as they may be shown (error lines, logs, status): without their secrets.

A secret sits in two places of a URL: the user info (`scheme://user:PASSWORD@host`) and the
query (`?password=...`, a mirror's `?token=...` or signature). Both are masked on the text, not
after parsing: a password holding an unencoded '/', '?' or '#' makes a URL parser split it into
host, path, query or fragment, so everything before the last '@' is taken as the user info
(a URL whose query holds an '@' is masked too much, never too little).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"


def _every_parameter(_name: str) -> bool:
    return True


def shown(url: str, *, secret_parameter: Callable[[str], bool] = _every_parameter) -> str:
    """`url` with its password and the values of the query parameters that `secret_parameter`
    picks (by decoded, lower-cased name; by default all of them) replaced by ***; the user
    name, host, port, path and fragment are kept."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, rest = rest.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        rest = f"{user}{colon and ':' + MASK}@{rest}"
    head, question, query = rest.partition("?")
    if question:
        query, hash_, fragment = query.partition("#")
        query = "&".join(_masked_parameter(p, secret_parameter) for p in query.split("&")) + hash_ + fragment
    return f"{scheme}{sep}{head}{question}{query}"


def _masked_parameter(parameter: str, secret: Callable[[str], bool]) -> str:
    name, equals, value = parameter.partition("=")
    if equals:
        return f"{name}={MASK}" if secret(unquote(name).lower()) else parameter
    return MASK if parameter and secret("") else parameter  # a bare token: `?abc123`


def misparsed_userinfo(url: str) -> bool:
    """True when a URL parser would not see the user info this text holds: its password
    carries an unencoded '/', '?' or '#' (which must be written %2F, %3F, %23)."""
    rest = url.partition("://")[2]
    userinfo = rest.rpartition("@")[0]
    return bool(userinfo) and urlsplit(url).netloc.rpartition("@")[0] != userinfo


def scrubbed(text: str, url: str, *, secret_parameter: Callable[[str], bool] = _every_parameter) -> str:
    """`text` (e.g. a library's error message about `url`) with every secret of `url` masked:
    the whole URL is shown as `shown(url)`, and its password and secret query values (picked
    as `shown` picks them) never appear, whole or as they were split by a parser."""
    text = text.replace(url, shown(url, secret_parameter=secret_parameter))
    rest = url.partition("://")[2] or url
    userinfo, _at, after = rest.rpartition("@")
    secrets = [userinfo.partition(":")[2]]
    query = after.partition("?")[2].partition("#")[0]
    for parameter in filter(None, query.split("&")):
        name, equals, value = parameter.partition("=")
        if secret_parameter(unquote(name).lower() if equals else ""):
            secrets.append(value if equals else name)
    # The longest first, then the pieces a parser makes of a password at '/', '?', '#'.
    for secret in sorted(filter(None, secrets + _pieces(secrets[0])), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _pieces(password: str) -> list[str]:
    return re.split(r"[/?#]", password)


def joined(base: str, name: str) -> str:
    """The URL of file `name` under the folder URL `base`: appended to its path, before any
    query (`https://m/w?sig=x` + `a.h5` -> `https://m/w/a.h5?sig=x`)."""
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{quote(name)}"))
