"""`python -m bench FOLDER`: run the benchmark and print its tables (`make bench`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn, Optional

import typer
from typing_extensions import Annotated

from bench.report import render_rich
from bench.run import BenchInputError, run_bench
from faces.ops import exits, logs

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _fail(message: str) -> NoReturn:
    """One `error: ...` line on stderr and exit 1, as `faces` commands do."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(exits.FAILED)


@app.command()
def bench(
    folder: Annotated[Path, typer.Argument(help="Folder of photos to analyse on both sides.")],
    synthetic_weights: Annotated[bool, typer.Option("--synthetic-weights", help="Use random weight files with DeepFace's layout (shared and separate trunks) instead of the real ones: timing does not depend on the values.")] = False,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write every figure, with machine facts, to this JSON file.")] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Repeat each warm measurement this many times and keep the median (cold runs happen once).")] = 1,
) -> None:
    """Benchmark this pipeline against DeepFace.analyze's own loop on the same photos: cold and
    warm end to end, each stage alone, backbone overhead, batching, and one transport hop."""
    logs.configure(level="WARNING")
    if not folder.is_dir():
        _fail(f"{folder} is not a folder")
    try:
        figures = run_bench(folder, synthetic_weights, repeat, say=lambda line: typer.echo(f"bench: {line}", err=True))
    except BenchInputError as exc:
        _fail(str(exc))
    render_rich(figures)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(figures, indent=1, default=str))
        typer.echo(f"figures: {json_path}", err=True)
    missed = [t["name"] for t in figures["derived"]["targets"] if not t["met"]]
    typer.echo(f"targets missed: {'; '.join(missed)}" if missed else "all targets met", err=True)


if __name__ == "__main__":
    app(prog_name="python -m bench")
