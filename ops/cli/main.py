"""`faces`: the command line. The commands live in pipeline.py (run, up, worker, watch, submit,
status), admin.py (visualize, result, replay, trim, recreate-group, purge, dlq), models.py
(models), health.py (health), export.py (export), serve.py (serve), browse.py (browse) and people.py (people, search);
importing them registers them on ``app``. application.py holds the entry point, `main`."""

from __future__ import annotations

# Importing these registers their commands on ``app``, in this order in `faces --help`.
# isort: off
from faces.ops.cli import pipeline  # noqa: F401
from faces.ops.cli import admin  # noqa: F401
from faces.ops.cli import models  # noqa: F401
from faces.ops.cli import health  # noqa: F401
from faces.ops.cli import export  # noqa: F401
from faces.ops.cli import serve  # noqa: F401
from faces.ops.cli import browse  # noqa: F401
from faces.ops.cli import people  # noqa: F401

# isort: on
from faces.ops.cli.application import app, main, unwrap_help

unwrap_help(app)  # once every command is registered

__all__ = ["app", "main"]


if __name__ == "__main__":
    main()
