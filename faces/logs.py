"""Logging set-up, done once at the CLI entry point (the library never configures logging).

JSON lines when stderr is not a terminal (containers, files, CI): every line is one JSON object,
and an exception is one field of it ("exception", the traceback as text). Readable lines on a
terminal, with plain tracebacks. Python's own logging (TensorFlow's and absl's Python side,
`warnings`) goes through the same renderer.

TensorFlow's C++ logging is silenced unless the level is DEBUG: TF_CPP_MIN_LOG_LEVEL is set here,
before any TensorFlow import (`configure` runs first in every command), and the notices it
prints before that variable applies are caught by `native_stderr_logged` around model loading.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any, TextIO, cast

import structlog

from faces import exits
from faces.errors import FacesError

LEVEL_ENV = "FACES_LOG_LEVEL"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

log = structlog.get_logger(__name__)
_stdlib_handler: logging.Handler | None = None


class LogLevelError(FacesError, ValueError):
    """$FACES_LOG_LEVEL is not a log level.

    Cause: a typo in the environment. Remedy: use one of DEBUG, INFO, WARNING, ERROR, CRITICAL.
    """

    exit_code = exits.USAGE  # a bad value


class _CurrentStderr:
    """Writes to whatever sys.stderr is at the time of writing, so that swapping it (pytest's
    capture, `native_stderr_logged`) also moves the log lines."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR = cast(TextIO, _CurrentStderr())  # structlog only calls write() and flush()


def configure(json_lines: bool | None = None, level: str | None = None, terminal_level: str | None = None) -> None:
    """Configure structlog and Python logging for this process.

    `level` is the command's default; `terminal_level`, when given, its default on a terminal,
    where a command that prints its own messages for people (`faces up`) would have them lost
    between log lines. $FACES_LOG_LEVEL, when set, wins over both. `json_lines` defaults to
    "stderr is not a terminal"."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    level_name = effective_level(terminal_level if terminal_level and not json_lines else level)
    _quiet_native_libraries(debug=level_name == "DEBUG")
    timestamped: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *timestamped, *_rendering(json_lines)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level_name)),
        logger_factory=structlog.PrintLoggerFactory(file=_STDERR),
        cache_logger_on_first_use=True,
    )
    # Libraries log their warnings only (all of it at DEBUG), rendered like our own lines.
    _route_python_logging(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.contextvars.merge_contextvars, *timestamped, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_rendering(json_lines)],
        ),
        logging.DEBUG if level_name == "DEBUG" else logging.WARNING,
    )


def effective_level(level: str | None = None) -> str:
    """$FACES_LOG_LEVEL, else `level`, else INFO; LogLevelError for a name that is no level."""
    name = (os.environ.get(LEVEL_ENV) or level or "INFO").strip().upper()
    if name not in LEVELS:
        raise LogLevelError(f"{LEVEL_ENV}={name!r} is not a log level; use one of {', '.join(LEVELS)}")
    return name


def _rendering(json_lines: bool) -> list[Any]:
    """The last processors: the exception as one text field, then one JSON object per line;
    or, on a terminal, readable lines with a plain traceback (rich's boxes are for humans
    with wide terminals, and they are long)."""
    if json_lines:
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    return [
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback)
    ]


def _route_python_logging(formatter: logging.Formatter, level: int) -> None:
    """One root handler (replacing ours from an earlier call, leaving others such as pytest's),
    and `warnings` through logging so that they are rendered the same way."""
    global _stdlib_handler
    root = logging.getLogger()
    if _stdlib_handler is not None:
        root.removeHandler(_stdlib_handler)
    _stdlib_handler = logging.StreamHandler(_STDERR)
    _stdlib_handler.setFormatter(formatter)
    root.addHandler(_stdlib_handler)
    root.setLevel(level)
    logging.captureWarnings(True)


def _quiet_native_libraries(debug: bool) -> None:
    """Environment read once when TensorFlow and DeepFace are first imported (after this)."""
    # 3: FATAL only; TensorFlow's C++ INFO/WARNING/ERROR lines (CUDA probing, oneDNN notices)
    # are not ours to show, and are not JSON. Set over the Dockerfile's 2, which lets ERROR
    # lines such as "failed call to cuInit" through on every CPU-only machine.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if debug else "3"
    # DeepFace prints its own log lines to stdout (deepface.commons.logger): errors only.
    os.environ["DEEPFACE_LOG_LEVEL"] = str(logging.DEBUG if debug else logging.ERROR)


@contextlib.contextmanager
def native_stderr_logged(source: str) -> Iterator[None]:
    """Run the block with file descriptor 2 sent to a temporary file, then log each line that C
    and C++ code wrote there as one `native.stderr` event: at debug level, or at warning when
    the block failed (the lines may say why).

    TensorFlow's C++ core writes its start-up notices ("All log messages before
    absl::InitializeLog() is called are written to STDERR", oneDNN, CUDA) straight to the
    descriptor before TF_CPP_MIN_LOG_LEVEL applies; left alone they would break the log's one
    JSON object per line. Python's own writes keep going to the real stderr meanwhile."""
    failed = False
    with tempfile.TemporaryFile() as captured:
        try:
            with _descriptor_2_to(captured):
                yield
        except BaseException:
            failed = True
            raise
        finally:
            captured.seek(0)
            _log_native_lines(captured.read().decode(errors="replace"), source, failed)


@contextlib.contextmanager
def _descriptor_2_to(file) -> Iterator[None]:
    """Point file descriptor 2 at `file` for the block, and sys.stderr at a copy of the real
    descriptor 2, so that only what bypasses Python's sys.stderr goes to `file`."""
    sys.stderr.flush()
    real_fd = os.dup(2)
    python_stderr = sys.stderr
    os.dup2(file.fileno(), 2)
    sys.stderr = os.fdopen(os.dup(real_fd), "w", buffering=1, errors="backslashreplace")
    try:
        yield
    finally:
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(real_fd, 2)
        os.close(real_fd)


def _log_native_lines(text: str, source: str, failed: bool) -> None:
    emit = log.warning if failed else log.debug
    for line in text.splitlines():
        if line.strip():
            emit("native.stderr", source=source, line=line.rstrip())
