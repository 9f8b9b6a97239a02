"""`faces serve`: the HTTP API (ops/web/) on uvicorn, in front of a running pipeline."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import typer
from typing_extensions import Annotated

from faces import settings as defaults
from faces.ops import logs
from faces.ops.cli_app import app, fail, usage
from faces.ops.options import with_settings
from faces.ops.settings import AppSettings
from faces.ops.web.options import HighWater, Host, Port



@app.command()
@with_settings
def serve(
    settings: AppSettings,
    host: Host = defaults.HTTP_HOST,
    port: Port = defaults.HTTP_PORT,
    high_water: HighWater = defaults.HIGH_WATER,
    wait_max_s: Annotated[float, typer.Option("--wait-max-s", envvar="FACES_HTTP_WAIT_MAX_S", show_envvar=True, min=0, help="The longest ?wait= an upload may ask for.")] = defaults.HTTP_WAIT_MAX_S,
    max_image_bytes: Annotated[int, typer.Option("--max-image-bytes", envvar="FACES_MAX_IMAGE_BYTES", show_envvar=True, min=1, help="Larger uploads are refused (413) while they stream in.")] = defaults.MAX_IMAGE_BYTES,
    uploads: Annotated[Path, typer.Option("--uploads", envvar="FACES_UPLOADS", show_envvar=True, help="Where uploaded images are kept (replay and pictures read them).")] = defaults.UPLOADS,
    result_ttl_s: Annotated[int, typer.Option("--result-ttl-s", envvar="FACES_RESULT_TTL_S", show_envvar=True, min=1, help="How long the API remembers an upload's job (keep it the workers' value).")] = defaults.RESULT_TTL_S,
) -> None:
    """Serve the HTTP API (docs/http.md) until Ctrl-C: uploads in, results out, /docs,
    /metrics. Needs a running pipeline (`faces up`, or --redis-url); `faces up --serve` runs
    both. FACES_API_TOKEN, when set, is the bearer token /v1/* and /metrics require."""
    import uvicorn

    from faces.ops.target import attach_url
    from faces.ops.web.app import create_app
    from faces.ops.web.config import ServeConfig

    logs.configure()
    token = os.environ.get(defaults.API_TOKEN_ENV, "").strip() or None
    if token is not None and len(token) < 16:
        usage(f"{defaults.API_TOKEN_ENV} is {len(token)} characters: use at least 16 (e.g. `openssl rand -hex 16`)")
    config = ServeConfig(redis_url=attach_url(settings), uploads=uploads, output=settings.output,
                         max_image_bytes=max_image_bytes, wait_max_s=wait_max_s, high_water=high_water,
                         result_ttl_s=result_ttl_s, token=token)
    _check_free(host, port)
    _check_writable(uploads)
    typer.echo(f"serving the API on http://{host}:{port}/ (reference: /docs); Ctrl-C to stop", err=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", access_log=False)


def start_server_process(url: str, settings: AppSettings, host: str, port: int,
                         high_water: int) -> subprocess.Popen:
    """`faces up --serve`: `faces serve` as a child process on the stack's Redis (the URL passed
    in the environment, which `ps` does not show), its log in the state dir's logs."""
    from faces.streams.embedded import die_with_parent

    _check_free(host, port)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.log_dir / "serve.log", "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "faces", "serve", "--host", host, "--port", str(port),
             "--high-water", str(high_water), "--state-dir", str(settings.state_dir),
             "--storage", str(settings.storage), "--output", str(settings.output)],
            env={**os.environ, "FACES_REDIS_URL": url}, stdout=log_file, stderr=log_file,
            preexec_fn=die_with_parent)


def stop_server_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _check_writable(folder: Path) -> None:
    """One line at start, not a 500 at every upload, when uploads cannot be kept in `folder`."""
    from faces.consumers.storage import make_private_dirs

    try:
        make_private_dirs(folder)  # owner-only: uploads are photos of people
        probe = folder / f".write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        fail(f"cannot keep uploads in {folder} ({exc.strerror or exc}): pick a writable folder with --uploads "
             "(FACES_UPLOADS)")


def _check_free(host: str, port: int) -> None:
    """One line, not uvicorn's log, when the address cannot be listened on."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}): pick another --port or --host, "
             "or stop what uses it")
