"""The command-line options that place the HTTP API (`faces serve`, `faces up --serve`)."""

from __future__ import annotations

import typer
from typing_extensions import Annotated

Host = Annotated[str, typer.Option("--host", envvar="FACES_HTTP_HOST", show_envvar=True,
                                   help="Address the HTTP API listens on (0.0.0.0: every interface).")]
Port = Annotated[int, typer.Option("--port", envvar="FACES_HTTP_PORT", show_envvar=True, min=1, max=65535,
                                   help="Port the HTTP API listens on.")]
HighWater = Annotated[int, typer.Option("--high-water", envvar="FACES_HIGH_WATER", show_envvar=True, min=0,
                                        help="Uploads are refused (429) while this many images are in flight (0: no limit).")]
