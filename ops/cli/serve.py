"""`faces serve`: the HTTP API (ops/web/) on uvicorn, in front of a running pipeline."""

from __future__ import annotations

import ipaddress
import os
import resource
import socket
from pathlib import Path

import typer

from faces import logs
from faces import settings as defaults
from faces.ops.cli.application import app, command_tree, fail, usage
from faces.ops.cli.options import Landmarks, UploadsHighWater, VectorIndex, with_settings
from faces.ops.settings import AppSettings
from faces.ops.supervise.server import serve_args
from faces.ops.web.options import (
    AllowedHosts,
    AllowInsecureBind,
    BodyIdleS,
    BodyTimeoutS,
    HeadTimeoutS,
    Host,
    MaxConnections,
    MaxImageBytes,
    Port,
    Uploads,
    UploadsReading,
    UploadsTtlS,
    WaitMaxS,
)

ALLOW_INSECURE_ENV = "FACES_HTTP_ALLOW_INSECURE_BIND"  # --allow-insecure-bind's, named in its refusal
RESERVED_FILES = 64  # the process's own open files: Redis connections, kept uploads, Python's
MAX_ACCEPT_BURST = 2048  # uvicorn's default backlog
MIN_TOKEN_CHARS = 16  # a shorter FACES_API_TOKEN is refused at start


@app.command()
@with_settings
def serve(
    settings: AppSettings,
    host: Host = defaults.HTTP_HOST,
    port: Port = defaults.HTTP_PORT,
    high_water: UploadsHighWater = defaults.HIGH_WATER,
    wait_max_s: WaitMaxS = defaults.HTTP_WAIT_MAX_S,
    max_image_bytes: MaxImageBytes = defaults.MAX_IMAGE_BYTES,
    uploads: Uploads = defaults.UPLOADS,
    result_ttl_s: UploadsTtlS = defaults.RESULT_TTL_S,
    allowed_hosts: AllowedHosts = "",
    allow_insecure_bind: AllowInsecureBind = False,
    uploads_reading: UploadsReading = defaults.HTTP_UPLOADS_READING,
    max_connections: MaxConnections = defaults.HTTP_MAX_CONNECTIONS,
    head_timeout_s: HeadTimeoutS = defaults.HTTP_HEAD_TIMEOUT_S,
    body_timeout_s: BodyTimeoutS = defaults.HTTP_BODY_TIMEOUT_S,
    body_idle_s: BodyIdleS = defaults.HTTP_BODY_IDLE_S,
    landmarks: Landmarks = None,
    vector_index: VectorIndex = defaults.VECTOR_INDEX,
) -> None:
    """Serve the HTTP API (docs/http.md) until Ctrl-C: uploads in, results out, /docs,
    /metrics. Needs a running pipeline (`faces up`, or --redis-url); `faces up --serve` runs
    both. FACES_API_TOKEN, when set, is the bearer token /v1/* and /metrics require; serving on
    an address other machines reach needs it (or --allow-insecure-bind)."""
    import uvicorn
    from uvicorn.main import STARTUP_FAILURE

    from faces.ops.jobs.target import attach_url
    from faces.ops.web.app import create_app
    from faces.ops.web.config import ServeConfig
    from faces.ops.web.transport import ReleasingServer, guarded_protocol

    logs.configure()
    token = api_token()
    _check_bind(host, token, allow_insecure_bind)
    config = ServeConfig(
        redis_url=attach_url(settings),
        uploads=uploads,
        output=settings.output,
        storage=settings.storage,
        max_image_bytes=max_image_bytes,
        wait_max_s=wait_max_s,
        high_water=high_water,
        result_ttl_s=result_ttl_s,
        token=token,
        host=host,
        allowed_hosts=tuple(h for h in allowed_hosts.split(",") if h.strip()),
        uploads_reading=uploads_reading,
        body_timeout_s=body_timeout_s,
        body_idle_s=body_idle_s,
        max_waiting=max(1, max_connections // 2),
        landmarks=landmarks,
        vector_index=vector_index,
    )
    _check_free(host, port)
    _check_writable(uploads)
    backlog = _accept_burst(max_connections)
    typer.echo(f"serving the API on http://{host}:{port}/ (reference: /docs); Ctrl-C to stop", err=True)
    # limit_concurrency: uvicorn's own 503 past this many requests at once (our protocol already
    # keeps connections to max_connections; pipelined requests are the rest).
    api = create_app(config)
    server = ReleasingServer(
        uvicorn.Config(
            api,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            http=guarded_protocol(max_connections, head_timeout_s),
            timeout_keep_alive=defaults.HTTP_KEEP_ALIVE_S,
            limit_concurrency=max_connections + 1,
            backlog=backlog,
        ),
        release=api.state.api.follower.release_waiters,
    )
    server.run()
    if not server.started:  # as uvicorn.run: its own error line is logged
        raise typer.Exit(STARTUP_FAILURE)


def api_token() -> str | None:
    """$FACES_API_TOKEN, or None when unset; bad usage (exit 2) when it is too short to guard."""
    token = os.environ.get(defaults.API_TOKEN_ENV, "").strip() or None
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        usage(
            f"{defaults.API_TOKEN_ENV} is {len(token)} characters: use at least {MIN_TOKEN_CHARS} "
            "(e.g. `openssl rand -hex 16`)"
        )
    return token


def check_server_process(settings: AppSettings, host: str, port: int, high_water: int) -> None:
    """Before `faces up --serve` starts anything: the `faces serve` it would start, its command
    line and environment (FACES_HTTP_*, FACES_UPLOADS, FACES_API_TOKEN, ...) read as that process
    will read them, and its start checks run, so that a refusal is one line on this terminal
    (exit 2 for a bad value), not an API that stops after Redis and the workers started."""
    command = command_tree().commands["serve"]
    # A bad value is a usage error that the entry point prints as one line (exit 2), naming
    # the option, its environment variable and `faces serve --help`.
    params = command.make_context("faces serve", serve_args(settings, host, port, high_water)).params
    # `faces up` has no such option of its own: its API takes them from the environment.
    _check_bind(host, api_token(), params["allow_insecure_bind"], allow_how=f"set {ALLOW_INSECURE_ENV}=1")
    _check_free(host, port)
    _check_writable(params["uploads"])
    _accept_burst(params["max_connections"])


def _check_writable(folder: Path) -> None:
    """One line at start, not a 500 at every upload, when uploads cannot be kept in `folder`."""
    from faces.consumers.storage import make_private_dirs

    try:
        make_private_dirs(folder)  # owner-only: uploads are photos of people
        probe = folder / f".write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        fail(
            f"cannot keep uploads in {folder} ({exc.strerror or exc}): pick a writable folder with --uploads "
            "(FACES_UPLOADS)"
        )


def _accept_burst(max_connections: int) -> int:
    """uvicorn's backlog: also how many connections asyncio accepts in one go, before any is
    handled (and any over the limit dropped). Those held, two such bursts and the process's own
    files must stay under the open-files limit: past it asyncio stops accepting for a second,
    probes included. The soft limit is raised to the hard one first; exit 2 when even that is
    too small."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        soft = max(soft, min(1 << 16, hard if hard != resource.RLIM_INFINITY else 1 << 16))
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    burst = min(MAX_ACCEPT_BURST, (soft - max_connections - RESERVED_FILES) // 2)
    if burst < 8:
        usage(
            f"--max-connections {max_connections} needs at least {max_connections + RESERVED_FILES + 16} open "
            f"files and this process may open {soft}: lower --max-connections (FACES_HTTP_MAX_CONNECTIONS) "
            "or raise the limit (ulimit -n)"
        )
    return burst


def _check_bind(
    host: str,
    token: str | None,
    allow_insecure: bool,
    allow_how: str = f"pass --allow-insecure-bind ({ALLOW_INSECURE_ENV}=1)",
) -> None:
    """One line, exit 2, instead of an open API on an address other machines reach: anyone there
    could fill the pipeline and read every result."""
    if token or _is_loopback(host):
        return
    if allow_insecure:
        # Said on every start: the guard is now whatever the operator put in front of the port.
        typer.echo(
            f"warning: serving on {host} without {defaults.API_TOKEN_ENV} ({ALLOW_INSECURE_ENV}): anyone who "
            "reaches this port can upload and read every result",
            err=True,
        )
        return
    usage(
        f"--host {host} lets other machines reach the API and {defaults.API_TOKEN_ENV} is unset: set it (16+ "
        f"characters, e.g. `openssl rand -hex 16`), serve on 127.0.0.1, or {allow_how} "
        "when something else guards the port"
    )


def _is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any interface


def _check_free(host: str, port: int) -> None:
    """One line, not uvicorn's log, when the address cannot be listened on."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        fail(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): pick another --port or --host, "
            "or stop what uses it"
        )
