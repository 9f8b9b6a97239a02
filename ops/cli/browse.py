"""`faces browse`: the web page over a finished `faces run`'s results, read-only, no pipeline
(ops/web/browse.py)."""

from __future__ import annotations

import os

import typer

from faces import logs
from faces import settings as defaults
from faces.ops.cli.application import app, fail
from faces.ops.cli.options import Output, Storage
from faces.ops.cli.serve import _check_bind, _check_free
from faces.ops.web.options import AllowInsecureBind, Host, Port


@app.command()
def browse(
    storage: Storage = defaults.STORAGE,
    output: Output = defaults.OUTPUT,
    host: Host = defaults.HTTP_HOST,
    port: Port = defaults.HTTP_PORT,
    allow_insecure_bind: AllowInsecureBind = False,
) -> None:
    """Browse the results in --storage (and pictures in --output) in the web page, read-only,
    until Ctrl-C: what `faces run` left there, with no pipeline and no Redis. Uploads are
    refused: `faces up --serve` analyses photos. FACES_API_TOKEN, when set, is required as with
    `faces serve`."""
    import uvicorn

    from faces.ops.web.browse import create_browse_app

    logs.configure()
    if not storage.is_dir():
        fail(
            f"no results to browse: {storage} is not a folder; run `faces run FOLDER` first, or pass "
            "the --storage it wrote to (FACES_STORAGE)"
        )
    token = os.environ.get(defaults.API_TOKEN_ENV, "").strip() or None
    _check_bind(host, token, allow_insecure_bind)
    _check_free(host, port)
    typer.echo(f"browsing {storage} on http://{host}:{port}/ (read-only); Ctrl-C to stop", err=True)
    uvicorn.run(
        create_browse_app(storage, output, host, token), host=host, port=port, log_level="warning", access_log=False
    )
