"""`faces export`: every stored result as one CSV or JSON Lines file (ops/jobs/export.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from faces import logs
from faces import settings as defaults
from faces.ops import exits
from faces.ops.cli.application import app, fail
from faces.ops.cli.options import Storage
from faces.ops.cli.wording import count
from faces.schemas import table

ExportFormat = Literal[table.FORMAT_CHOICES]  # type: ignore[valid-type]  # typer lists the choices in --help and refuses others
ExportPer = Literal[table.PER_CHOICES]  # type: ignore[valid-type]


@app.command()
def export(
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format", help="csv (opens in a spreadsheet as is: UTF-8 with a BOM) or jsonl (one JSON object per line)."
        ),
    ] = "csv",
    per: Annotated[
        ExportPer,
        typer.Option(
            "--per",
            help="One row per face (an image without faces, or with an error, still gets one row) or per image.",
        ),
    ] = "face",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
    ] = None,
    storage: Storage = defaults.STORAGE,
) -> None:
    """Write every result in --storage as one table: file, image id, status, error, box, age,
    gender, pose, quality, ... (the columns: docs/commands.md). Needs no running pipeline.

    Exit 0 when every file was exported, 3 when some files in --storage are not results (each
    is named on stderr; the others are exported), 1 when --storage holds no results.
    """
    from faces.ops.jobs.export import NoResults, export_text, read_storage, write_export

    logs.configure(level="WARNING")
    try:
        found = read_storage(storage)
    except NoResults as exc:
        fail(str(exc))
    write_export(export_text(found.results, fmt, per), out)
    for path, reason in found.unreadable:
        typer.echo(f"  skipped {path}: {reason}", err=True)
    if out is not None:
        typer.echo(f"{count(len(found.results), 'result')} exported to {out}", err=True)
    raise typer.Exit(exits.SOME_ERRORS if found.unreadable else exits.OK)
