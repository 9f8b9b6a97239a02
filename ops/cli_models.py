"""`faces models check|fetch` and `faces bench`: the model files and the benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from ops import logs
from ops.cli_app import EXIT_FAILED, app, fail

models_app = typer.Typer(no_args_is_help=True, help="Model files: check what is there, fetch what is missing.")
app.add_typer(models_app, name="models")


@app.command()
def bench(
    folder: Annotated[Path, typer.Argument(help="Folder of photos to analyse on both sides.")],
    synthetic_weights: Annotated[bool, typer.Option("--synthetic-weights", help="Use random weight files with DeepFace's layout (shared and separate trunks) instead of the real ones: timing does not depend on the values.")] = False,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write every figure, with machine facts, to this JSON file.")] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Repeat each warm measurement this many times and keep the median (cold runs happen once).")] = 1,
) -> None:
    """Benchmark this pipeline against DeepFace.analyze's own loop on the same photos: cold and
    warm end to end, each stage alone, backbone overhead, batching, and one transport hop."""
    from ops.bench import BenchInputError, run_bench
    from ops.bench_report import render_rich

    logs.configure(level="WARNING")
    if not folder.is_dir():
        fail(f"{folder} is not a folder")
    try:
        figures = run_bench(folder, synthetic_weights, repeat, say=lambda line: typer.echo(f"bench: {line}", err=True))
    except BenchInputError as exc:
        fail(str(exc))
    render_rich(figures)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(figures, indent=1, default=str))
        typer.echo(f"figures: {json_path}", err=True)
    missed = [t["name"] for t in figures["derived"]["targets"] if not t["met"]]
    typer.echo(f"targets missed: {'; '.join(missed)}" if missed else "all targets met", err=True)


@models_app.command("check")
def models_check(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List every model file the pipeline uses: path, size, sha256, status. Exit 1 if a
    required file is missing."""
    from models.weights import check_model_files

    files = check_model_files()
    if as_json:
        typer.echo(json.dumps([{**f.__dict__, "path": str(f.path)} for f in files], indent=1))
    else:
        for f in files:
            size = f"{f.size / 1e6:8.1f} MB" if f.size else "       -   "
            typer.echo(f"{f.status:17} {size}  {f.name:28} {f.path}  {f.sha256 or ''}")
    if any(f.status == "missing" for f in files):
        raise typer.Exit(EXIT_FAILED)


@models_app.command("fetch")
def models_fetch() -> None:
    """Download the missing DeepFace age and gender weights (about 540 MB each)."""
    from models.weights import FetchFailed, fetch_missing
    from ops.progress import download_progress

    with download_progress() as progress:
        try:
            fetched = fetch_missing(progress=progress)
        except FetchFailed as exc:
            fail(str(exc))
    typer.echo(f"fetched {len(fetched)} files" if fetched else "nothing to fetch: all files present")
