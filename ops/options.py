"""Typer option declarations shared by the commands, each with its environment variable."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from ops.settings import AppSettings

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
