"""What a web page on another site may do with the API: nothing.

- Host allow-list. A page can make its own name resolve to 127.0.0.1 (DNS rebinding) and then
  read the answers as same-origin; its requests still carry that name as `Host`. The API
  answers only Host names it was told (ServeConfig.answers_to: the bound address, the loopback
  names, --allowed-hosts); others get 400. The probes answer any Host: orchestrators ask them
  by IP address, and they reveal nothing.
- Origin on requests that change state. Any page may POST a form or a fetch to any address the
  browser reaches (answers unread, the upload done); the browser then names the page's origin
  in `Origin`. A POST, PUT, PATCH or DELETE whose Origin is not this server's own is refused
  (403). Programs (curl, the SDKs) send no Origin and are not concerned; the bundled page is
  same-origin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers

from faces.ops.web.errors import error_response

PROBES = frozenset({"/healthz", "/readyz"})
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def split_host(host: str) -> tuple[str, int | None]:
    """("name", port or None) of a Host header value: `[::1]:8000`, `localhost`, `10.0.0.5:80`."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = host.partition(":") if host.count(":") == 1 else (host, "", "")
    return name, int(port) if port.isdigit() else None


def same_origin(origin: str, host: str) -> bool:
    """True when `origin` (scheme://name[:port]) names the server the Host header names."""
    try:
        parts = urlsplit(origin)
        origin_port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    name, port = split_host(host)
    return bool(parts.hostname) and parts.hostname == name and origin_port == (port or DEFAULT_PORTS.get(parts.scheme))


class GuardHostAndOrigin:
    """ASGI middleware: 400 for a Host not in `answers_to` ("*": any), 403 for a state-changing
    request from a foreign Origin."""

    def __init__(self, app, answers_to: frozenset[str]):
        self.app = app
        self.answers_to = answers_to

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                return await refusal(scope, receive, send)
        await self.app(scope, receive, send)

    def refusal(self, scope):
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        name, _port = split_host(host)
        if "*" not in self.answers_to and name not in self.answers_to and scope["path"] not in PROBES:
            return error_response(
                400,
                f"Host {host!r} is not a name this server answers to (a guard against DNS "
                "rebinding): reach it by an allowed name, or start it with --allowed-hosts "
                f"{name or 'NAME'} (FACES_HTTP_ALLOWED_HOSTS)",
            )
        origin = headers.get("origin")
        if scope["method"] in CHANGING and origin is not None and not same_origin(origin, host):
            return error_response(
                403,
                f"a page from {origin} may not {scope['method']} here (cross-site requests "
                "are refused): use the page this server serves at /, or call the API from a "
                "program, which sends no Origin",
            )
        return None
