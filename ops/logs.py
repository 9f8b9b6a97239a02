"""Logging set-up, done once at the CLI entry point (the library never configures logging).

JSON lines when stderr is not a terminal (containers, files, CI); readable lines otherwise.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure(json_lines: bool | None = None, level: str | None = None) -> None:
    level_name = (level or os.environ.get("FACES_LOG_LEVEL") or "INFO").upper()
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    renderer = (structlog.processors.JSONRenderer() if json_lines
                else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level_name)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # TensorFlow and absl write through stdlib logging and their own C++ logger; keep them quiet.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
