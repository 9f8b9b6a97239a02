"""Typer option declarations shared by the commands, each with its environment variable;
`with_settings`, which gives a command the four options every command takes, and
`with_analysis`, which gives `run`, `up` and `replay` the analysis options they hand to workers."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from faces import settings as defaults
from faces.ops.settings import AppSettings
from faces.settings import ModelSettings


def _check_redis_url(url: str | None) -> str | None:
    """A URL redis-py cannot parse is bad usage (exit 2), caught before anything starts."""
    if url:
        from faces.streams.connection import check_url

        try:
            check_url(url)  # its message never holds a piece of the password
        except ValueError as exc:
            raise typer.BadParameter(f"{exc}; e.g. redis://localhost:6379/0") from None
    return url


RedisUrl = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        envvar=["FACES_REDIS_URL", "REDIS_URL"],
        show_envvar=True,
        callback=_check_redis_url,
        help="Redis to use (redis://, rediss://, unix://; user and password allowed). "
        "Unset: an embedded redis-server under --state-dir.",
    ),
]
StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="FACES_STATE_DIR",
        show_envvar=True,
        help="Embedded Redis data (AOF, socket) and worker logs.",
    ),
]
Storage = Annotated[
    Path, typer.Option("--storage", envvar="FACES_STORAGE", show_envvar=True, help="Where one JSON per image goes.")
]
Output = Annotated[
    Path, typer.Option("--output", envvar="FACES_OUTPUT", show_envvar=True, help="Where annotated pictures go.")
]


def _parameters(*declared: tuple[str, Any, Any]) -> tuple[inspect.Parameter, ...]:
    """(name, typer option, default) each, as the parameters `_in_place_of` puts in a signature."""
    return tuple(
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option, default=default)
        for name, option, default in declared
    )


# The options every command takes (`with_settings`), named after the AppSettings field each fills in.
_SHARED = _parameters(
    ("redis_url", RedisUrl, None),
    ("state_dir", StateDir, defaults.STATE_DIR),
    ("storage", Storage, defaults.STORAGE),
    ("output", Output, defaults.OUTPUT),
)
SHARED_FLAGS = tuple(f"--{option.name.replace('_', '-')}" for option in _SHARED)


def with_settings(command: Callable | None = None, *, output: bool = True):
    """Decorator (under `@app.command()`): the command's parameter `settings: AppSettings` becomes
    the options every command takes, --redis-url, --state-dir, --storage and --output (without
    --output when `output=False`), in its place; the command is called with the AppSettings
    they make. Declare `settings` keyword-only (`*, settings`) after parameters with defaults."""
    shared = tuple(option for option in _SHARED if output or option.name != "output")

    def settings_of(given: dict[str, Any]) -> AppSettings:
        return AppSettings(**{**given, "redis_url": given["redis_url"] or None})

    def decorate(command: Callable) -> Callable:
        return _in_place_of("settings", shared, settings_of, command)

    return decorate(command) if command is not None else decorate


def _in_place_of(
    name: str, options: tuple[inspect.Parameter, ...], build: Callable[[dict[str, Any]], Any], command: Callable
) -> Callable:
    """`command` with its parameter `name` replaced by `options`, in its place; the command is
    called with `build(the options' values)` as `name`. Typer reads a command's options from its
    signature: the one presented here."""
    own = inspect.signature(command, eval_str=True)
    at = list(own.parameters).index(name)
    before, after = list(own.parameters.values())[:at], list(own.parameters.values())[at + 1 :]
    # Keyword-only throughout (typer passes everything by name): options with defaults may
    # then come before parameters without.
    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in [*before, *options, *after]]

    @functools.wraps(command)
    def with_options(**kwargs):
        # typer passes every option; a direct call (a test, another command) may leave some to
        # their defaults, as it could before they were gathered here.
        given = {option.name: _pop_option(kwargs, option) for option in options}
        return command(**kwargs, **{name: build(given)})

    with_options.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_options.__annotations__ = {
        p.name: p.annotation for p in parameters if p.annotation is not inspect.Parameter.empty
    }
    return with_options


# The analysis options `faces run`, `up` and `replay` share (`faces worker` takes them one by one).
def _check_detector(name: str | None) -> str | None:
    """An unknown detector, or one whose model file is missing, is refused before any worker
    starts (a worker would fail at start and be restarted forever)."""
    if name:
        from faces.models.detect import BackendUnavailable, UnknownBackend, check_detector

        try:
            check_detector(name, ModelSettings.from_environ())
        except (UnknownBackend, BackendUnavailable) as exc:
            raise typer.BadParameter(str(exc)) from None
    return name


def _check_agegender(choice: str | None) -> str:
    if choice is None:  # what check_choice(None) gives, without importing the backends module:
        # every worker runs this callback, and that module pulls in DeepFace's helpers (~0.3 CPU
        # s a process, five processes at each start of `faces run`), needed by agegender alone.
        return defaults.AGEGENDER
    from faces.models.agegender_backends import CHOICES, AgeGenderChoiceError, check_choice

    try:
        return check_choice(choice)
    except AgeGenderChoiceError:
        raise typer.BadParameter(f"{choice!r} is not one of {', '.join(CHOICES)}") from None


def _detector_help() -> str:
    from faces.models.detectors import BACKENDS, DEFAULT_BACKEND

    return f"Face detector: {', '.join(BACKENDS)} (default {DEFAULT_BACKEND})."


Detector = Annotated[
    str | None,
    typer.Option(
        "--detector", envvar="FACES_DETECTOR", show_envvar=True, callback=_check_detector, help=_detector_help()
    ),
]
AgeGender = Annotated[
    str | None,
    typer.Option(
        "--agegender",
        envvar="FACES_AGEGENDER",
        show_envvar=True,
        callback=_check_agegender,
        help="Age/gender model: auto (DeepFace when its weights are there, else the bundled dlib "
        "networks), deepface, or dlib.",
    ),
]


def _check_landmarks(choice: str | None) -> str | None:
    if not choice:  # every worker runs this callback: dlib's landmark module only when asked
        return None
    from faces.models.landmarks import LandmarksChoiceError, check_choice

    try:
        return check_choice(choice)
    except LandmarksChoiceError as exc:
        raise typer.BadParameter(str(exc)) from None


Landmarks = Annotated[
    str | None,
    typer.Option(
        "--landmarks",
        envvar="FACES_LANDMARKS",
        show_envvar=True,
        callback=_check_landmarks,
        help="Landmark set: 68 (the default; head pose is fitted to them) or 5 (eye corners and nose "
        "base, pose null: its model is free for commercial use, the 68-point one is not; docs/models.md).",
    ),
]
Recognition = Annotated[
    bool,
    typer.Option(
        "--recognition/--no-recognition",
        envvar="FACES_RECOGNITION",
        show_envvar=True,
        help="Who is in the photo (the embed stage): each face's descriptor, matched against the people "
        "enrolled and clustered with the faces seen before (README, Recognition). Off: nothing is computed or kept.",
    ),
]


def _check_vector_index(mode: str) -> str:
    if mode not in defaults.VECTOR_INDEX_MODES:
        raise typer.BadParameter(f"{mode!r}: one of {', '.join(defaults.VECTOR_INDEX_MODES)}")
    return mode


VectorIndex = Annotated[
    str,
    typer.Option(
        "--vector-index",
        envvar="FACES_VECTOR_INDEX",
        show_envvar=True,
        callback=_check_vector_index,
        help="Recognition's search: auto uses the Redis server's vector index when it has one "
        "(RediSearch, optional: docs/models.md 'Recognition'), off keeps exact search in each process. "
        "Set it alike for every process of a deployment.",
    ),
]
KeepDescriptors = Annotated[
    bool,
    typer.Option(
        "--keep-descriptors",
        envvar="FACES_KEEP_DESCRIPTORS",
        show_envvar=True,
        help="Also write each face's 128 descriptor numbers into its result (off: they stay in Redis only).",
    ),
]
Batch = Annotated[
    int,
    typer.Option(
        "--batch",
        envvar="FACES_BATCH",
        show_envvar=True,
        min=1,
        help="Entries each stage reads at once and analyses as one batch.",
    ),
]


def _check_workers(text: str) -> str:
    """A --workers value that cannot be read is bad usage (exit 2), refused before anything starts."""
    from faces.ops.supervise.counts import BadWorkerCounts, parse_counts

    try:
        parse_counts(text)
    except BadWorkerCounts as exc:
        raise typer.BadParameter(str(exc)) from None
    return text


Workers = Annotated[
    str,
    typer.Option(
        "--workers",
        envvar="FACES_WORKERS",
        show_envvar=True,
        callback=_check_workers,
        help="Worker processes per stage: auto (each stage sized by its share of the CPU: on 2 cores "
        "embed=2 and one of each other stage with recognition on, detect=2 with it off), or STAGE=N "
        "pairs such as detect=3,agegender=2 (stages not named: auto).",
    ),
]
Visualize = Annotated[
    bool,
    typer.Option(
        "--visualize/--no-visualize",
        envvar="FACES_VISUALIZE",
        show_envvar=True,
        help="Draw annotated pictures into --output.",
    ),
]


def _high_water(help: str) -> Any:
    """--high-water: one setting (FACES_HIGH_WATER), which the commands that feed the pipeline
    wait on and the HTTP API refuses uploads on, each saying so in its help."""
    return Annotated[int, typer.Option("--high-water", envvar="FACES_HIGH_WATER", show_envvar=True, min=0, help=help)]


HighWater = _high_water("Submission waits while this many images are in flight (0: no limit).")
UploadsHighWater = _high_water("Uploads are refused (429) while this many images are in flight (0: no limit).")
TimeoutS = Annotated[
    float | None,
    typer.Option("--timeout-s", min=0.001, help="Give up (exit 1) if not every image has a result by then."),
]


@dataclass(frozen=True)
class Analysis:
    """The analysis options `faces run`, `up` and `replay` take alike and hand to the workers
    they start (`with_analysis`); `faces worker` takes them one by one."""

    visualize: bool
    batch: int
    detector: str | None
    agegender: str | None
    landmarks: str | None
    recognition: bool
    keep_descriptors: bool

    def worker_args(self, settings: AppSettings) -> dict[str, list[str]]:
        return analysis_worker_args(settings, **asdict(self))


# Analysis's options, in the order --help lists them, with their defaults.
_ANALYSIS = _parameters(
    ("visualize", Visualize, True),
    ("batch", Batch, defaults.BATCH),
    ("detector", Detector, None),
    ("agegender", AgeGender, None),
    ("landmarks", Landmarks, None),
    ("recognition", Recognition, defaults.RECOGNITION),
    ("keep_descriptors", KeepDescriptors, False),
)


def _pop_option(kwargs: dict[str, Any], option: inspect.Parameter) -> Any:
    if option.default is inspect.Parameter.empty:
        return kwargs.pop(option.name)
    return kwargs.pop(option.name, option.default)


def with_analysis(command: Callable) -> Callable:
    """Decorator (under `@with_settings`): the command's parameter `analysis: Analysis` becomes
    the analysis options (--visualize ... --keep-descriptors) in its place; the command is called
    with the Analysis they make."""
    return _in_place_of("analysis", _ANALYSIS, lambda given: Analysis(**given), command)


# `faces worker`'s own options.
ConsumerName = Annotated[
    str | None,
    typer.Option(
        envvar="FACES_CONSUMER",
        help="Consumer name; keep it stable across restarts to take back its own pending entries. Default: STAGE-HOST-PID.",
    ),
]
MinFaceScore = Annotated[
    float | None,
    typer.Option(
        envvar="FACES_MIN_FACE_SCORE",
        help="Detect stage: drop detections scoring below this (default per detector; dlib-hog 0.2).",
    ),
]
MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        envvar="FACES_METRICS_PORT",
        min=1,
        max=65535,
        help="Serve this worker's Prometheus counters on http://0.0.0.0:PORT/metrics (docs/http.md).",
    ),
]

# `faces worker`'s options for its consumer runtime, each a streams/settings.py RuntimeSettings
# field of its name (`with_runtime`).
BlockMs = Annotated[int, typer.Option(envvar="FACES_BLOCK_MS", help="How long one read waits for new entries.")]
ClaimIdleMs = Annotated[
    int, typer.Option(envvar="FACES_CLAIM_IDLE_MS", help="Entries idle this long in another consumer are claimed.")
]
MaxDeliveries = Annotated[
    int, typer.Option(envvar="FACES_MAX_DELIVERIES", help="Deliveries before an entry is dead-lettered.")
]
GraceS = Annotated[float, typer.Option(envvar="FACES_GRACE_S", help="Time to finish in-flight entries after SIGTERM.")]
BatchLimitS = Annotated[
    float,
    typer.Option(
        envvar="FACES_BATCH_LIMIT_S",
        help="A batch still running after this is taken for hung: its entries are left to the other workers and this one exits (code 6) to be replaced.",
    ),
]
RetentionS = Annotated[
    float, typer.Option(envvar="FACES_RETENTION_S", help="History the images stream keeps for replay.")
]
ResultTtlS = Annotated[
    int,
    typer.Option(envvar="FACES_RESULT_TTL_S", help="How long Redis keeps each image's latest result (the files stay)."),
]
Burst = Annotated[bool, typer.Option(help="Exit once the input stream is drained.")]
_RUNTIME = _parameters(
    ("batch", Batch, defaults.BATCH),
    ("block_ms", BlockMs, defaults.BLOCK_MS),
    ("claim_idle_ms", ClaimIdleMs, defaults.CLAIM_IDLE_MS),
    ("max_deliveries", MaxDeliveries, defaults.MAX_DELIVERIES),
    ("grace_s", GraceS, defaults.GRACE_S),
    ("batch_limit_s", BatchLimitS, defaults.BATCH_LIMIT_S),
    ("retention_s", RetentionS, defaults.RETENTION_S),
    ("result_ttl_s", ResultTtlS, defaults.RESULT_TTL_S),
    ("burst", Burst, False),
)


def with_runtime(command: Callable) -> Callable:
    """Decorator (under `@with_settings`): the command's parameter `runtime_options` becomes the
    consumer runtime's options (--batch ... --burst) in its place; the command is called with
    their values by field name, for it to build (and refuse) RuntimeSettings itself."""
    return _in_place_of("runtime_options", _RUNTIME, dict, command)


def analysis_worker_args(
    settings: AppSettings,
    batch: int,
    visualize: bool,
    detector: str | None,
    agegender: str | None,
    landmarks: str | None = None,
    recognition: bool = defaults.RECOGNITION,
    keep_descriptors: bool = False,
) -> dict[str, list[str]]:
    """The worker options (per stage, "*" for all) that carry run's / up's analysis options.
    (--agegender's callback always gives a choice; None only from a caller that has none.)"""
    args = {
        "*": ["--batch", str(batch), "--storage", str(settings.storage)],
        "sink": ["--output", str(settings.output)] if visualize else ["--no-visualize"],
        "embed": ["--recognition" if recognition else "--no-recognition"]
        + (["--keep-descriptors"] if keep_descriptors else []),
    }
    if agegender:
        args["agegender"] = ["--agegender", agegender]
    if detector:
        args["detect"] = ["--detector", detector]
    if landmarks:
        args["landmarks"] = ["--landmarks", landmarks]
    return args


def check_folders(settings: AppSettings, pictures: bool) -> None:
    """--storage, and --output when pictures are drawn, must be folders this user may write
    (or create): refused here (exit 2), before anything starts, instead of a sink that
    dead-letters every image it cannot write."""
    from faces.ops.cli.application import usage

    for flag, env, folder in (
        ("--storage", "FACES_STORAGE", settings.storage),
        *((("--output", "FACES_OUTPUT", settings.output),) if pictures else ()),
    ):
        problem = folder_problem(folder)
        if problem:
            usage(f"{flag} {folder} {problem}: give a folder you can write ({flag} or {env})")


def folder_problem(folder: Path) -> str | None:
    """Why files cannot be written in `folder` (created on first write when missing), or None."""
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists() or p.is_symlink())
    if not existing.is_dir():
        return "is a file" if existing == folder else f"cannot be created: {existing} is a file"
    if not os.access(existing, os.W_OK | os.X_OK):
        return "is not writable" if existing == folder else f"cannot be created in {existing} (not writable)"
    return None
