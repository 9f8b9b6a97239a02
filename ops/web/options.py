"""The command-line options that place the HTTP API (`faces serve`, `faces up --serve`); its
--high-water is the pipeline's (ops/cli/options.py `UploadsHighWater`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Host = Annotated[
    str,
    typer.Option(
        "--host",
        envvar="FACES_HTTP_HOST",
        show_envvar=True,
        help="Address the HTTP API listens on (0.0.0.0: every interface).",
    ),
]
Port = Annotated[
    int,
    typer.Option(
        "--port", envvar="FACES_HTTP_PORT", show_envvar=True, min=1, max=65535, help="Port the HTTP API listens on."
    ),
]
WaitMaxS = Annotated[
    float,
    typer.Option(
        "--wait-max-s",
        envvar="FACES_HTTP_WAIT_MAX_S",
        show_envvar=True,
        min=0,
        help="The longest ?wait= an upload may ask for.",
    ),
]
MaxImageBytes = Annotated[
    int,
    typer.Option(
        "--max-image-bytes",
        envvar="FACES_MAX_IMAGE_BYTES",
        show_envvar=True,
        min=1,
        help="Larger uploads are refused (413) while they stream in.",
    ),
]
Uploads = Annotated[
    Path,
    typer.Option(
        "--uploads",
        envvar="FACES_UPLOADS",
        show_envvar=True,
        help="Where uploaded images are kept, owner-only (replay and pictures read them); deleted once older than --result-ttl-s.",
    ),
]
UploadsTtlS = Annotated[
    int,
    typer.Option(
        "--result-ttl-s",
        envvar="FACES_RESULT_TTL_S",
        show_envvar=True,
        min=1,
        help="How long the API remembers an upload's job and its own result, and keeps the uploaded photo (keep it the workers' value).",
    ),
]
AllowedHosts = Annotated[
    str,
    typer.Option(
        "--allowed-hosts",
        envvar="FACES_HTTP_ALLOWED_HOSTS",
        show_envvar=True,
        help="More Host names the API answers to, comma-separated (besides --host and localhost, 127.0.0.1, ::1); "
        "`*`: any. Others get 400 (a guard against DNS rebinding).",
    ),
]
AllowInsecureBind = Annotated[
    bool,
    typer.Option(
        "--allow-insecure-bind",
        envvar="FACES_HTTP_ALLOW_INSECURE_BIND",
        show_envvar=True,
        help="Serve on an address other machines reach although FACES_API_TOKEN is unset (something else guards "
        "the port). Without it, that is refused at start.",
    ),
]
UploadsReading = Annotated[
    int,
    typer.Option(
        "--uploads-reading",
        envvar="FACES_HTTP_UPLOADS_READING",
        show_envvar=True,
        min=1,
        help="Upload bodies read at once; more are refused (503, Retry-After).",
    ),
]
MaxConnections = Annotated[
    int,
    typer.Option(
        "--max-connections",
        envvar="FACES_HTTP_MAX_CONNECTIONS",
        show_envvar=True,
        min=1,
        help="Open connections; one more drops the oldest without a request in progress, or gets 503.",
    ),
]
HeadTimeoutS = Annotated[
    float,
    typer.Option(
        "--head-timeout-s",
        envvar="FACES_HTTP_HEAD_TIMEOUT_S",
        show_envvar=True,
        min=0.1,
        help="A request head not complete within this (from connecting, or the previous answer): connection closed.",
    ),
]
BodyTimeoutS = Annotated[
    float,
    typer.Option(
        "--body-timeout-s",
        envvar="FACES_HTTP_BODY_TIMEOUT_S",
        show_envvar=True,
        min=0.1,
        help="An upload body not complete within this, or silent for --body-idle-s: 408.",
    ),
]
BodyIdleS = Annotated[
    float,
    typer.Option(
        "--body-idle-s",
        envvar="FACES_HTTP_BODY_IDLE_S",
        show_envvar=True,
        min=0.1,
        help="The longest pause between two parts of an upload body: 408 past it.",
    ),
]
