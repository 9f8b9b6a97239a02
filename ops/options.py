"""Typer option declarations shared by the commands, each with its environment variable."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from faces.ops.settings import AppSettings

def _check_redis_url(url: str | None) -> str | None:
    """A URL redis-py cannot parse is bad usage (exit 2), caught before anything starts."""
    if url:
        from redis.connection import parse_url

        try:
            parse_url(url)
        except ValueError as exc:
            raise typer.BadParameter(f"{exc}; e.g. redis://localhost:6379/0") from None
    return url


RedisUrl = Annotated[Optional[str], typer.Option(
    "--redis-url", envvar=["FACES_REDIS_URL", "REDIS_URL"], show_envvar=True, callback=_check_redis_url,
    help="Redis to use (redis://, rediss://, unix://; user and password allowed). "
         "Unset: an embedded redis-server under --state-dir.")]
StateDir = Annotated[Path, typer.Option(
    "--state-dir", envvar="FACES_STATE_DIR", show_envvar=True,
    help="Embedded Redis data (AOF, socket) and worker logs.")]
Storage = Annotated[Path, typer.Option(
    "--storage", envvar="FACES_STORAGE", show_envvar=True, help="Where one JSON per image goes.")]
Output = Annotated[Path, typer.Option(
    "--output", envvar="FACES_OUTPUT", show_envvar=True, help="Where annotated pictures go.")]

DEFAULT_STATE_DIR = Path(".faces")
DEFAULT_STORAGE = Path("storage")
DEFAULT_OUTPUT = Path("output")


def app_settings(redis_url: str | None, state_dir: Path, storage: Path, output: Path) -> AppSettings:
    return AppSettings(redis_url=redis_url or None, state_dir=state_dir, storage=storage, output=output)


# The analysis options `faces run` and `faces up` share (`faces worker` takes them one by one).
def _check_detector(name: str | None) -> str | None:
    """An unknown detector, or one whose model file is missing, is refused before any worker
    starts (a worker would fail at start and be restarted forever)."""
    if name:
        from faces.models.detect import BackendUnavailable, UnknownBackend, check_detector

        try:
            check_detector(name)
        except (UnknownBackend, BackendUnavailable) as exc:
            raise typer.BadParameter(str(exc)) from None
    return name


def _check_agegender(choice: str | None) -> str:
    from faces.models.agegender_backends import CHOICES, AgeGenderChoiceError, check_choice

    try:
        return check_choice(choice)
    except AgeGenderChoiceError:
        raise typer.BadParameter(f"{choice!r} is not one of {', '.join(CHOICES)}") from None


def _detector_help() -> str:
    from faces.models.detectors import BACKENDS, DEFAULT_BACKEND

    return f"Face detector: {', '.join(BACKENDS)} (default {DEFAULT_BACKEND})."


Detector = Annotated[Optional[str], typer.Option(
    "--detector", envvar="FACES_DETECTOR", show_envvar=True, callback=_check_detector,
    help=_detector_help())]
AgeGender = Annotated[Optional[str], typer.Option(
    "--agegender", envvar="FACES_AGEGENDER", show_envvar=True, callback=_check_agegender,
    help="Age/gender model: auto (DeepFace when its weights are there, else the bundled dlib "
         "networks), deepface, or dlib.")]
Batch = Annotated[int, typer.Option(
    "--batch", envvar="FACES_BATCH", show_envvar=True, min=1,
    help="Entries each stage reads at once and analyses as one batch.")]
Visualize = Annotated[bool, typer.Option(
    "--visualize/--no-visualize", envvar="FACES_VISUALIZE", show_envvar=True,
    help="Draw annotated pictures into --output.")]
HighWater = Annotated[int, typer.Option(
    "--high-water", envvar="FACES_HIGH_WATER", show_envvar=True, min=0,
    help="Submission waits while this many images are in flight (0: no limit).")]
TimeoutS = Annotated[Optional[float], typer.Option(
    "--timeout-s", min=0.001, help="Give up (exit 1) if not every image has a result by then.")]

DEFAULT_BATCH = 8
DEFAULT_HIGH_WATER = 500


def analysis_worker_args(batch: int, storage: Path, output: Path, visualize: bool,
                         detector: str | None, agegender: str) -> dict[str, list[str]]:
    """The worker options (per stage, "*" for all) that carry run's / up's analysis options."""
    args = {"*": ["--batch", str(batch), "--storage", str(storage)],
            "sink": ["--output", str(output)] if visualize else ["--no-visualize"],
            "agegender": ["--agegender", agegender]}
    if detector:
        args["detect"] = ["--detector", detector]
    return args
