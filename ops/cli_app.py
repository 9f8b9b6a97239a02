"""The `faces` application object and what every command module shares: the failure exit."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Face analysis pipeline on Redis Streams: boxes, 68 landmarks, pose, age, gender.")

EXIT_FAILED = 1
STAGES = ("detect", "landmarks", "agegender", "sink")


def fail(message: str) -> None:
    """Print ``error: message`` to stderr and exit 1 (could not run)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_FAILED)
