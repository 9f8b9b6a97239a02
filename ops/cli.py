"""`faces`: the command line. The commands live in ops/cli_pipeline.py (run, up, worker,
watch, submit, status), ops/cli_admin.py (visualize, result, replay, trim, recreate-group,
purge, dlq) and ops/cli_models.py (models), ops/cli_health.py (health), ops/cli_export.py (export),
ops/cli_serve.py (serve); importing them registers them on ``app``.
ops/cli_app.py holds the entry point, `main`."""

from __future__ import annotations

# Importing these registers their commands on ``app``, in this order in `faces --help`.
from faces.ops import cli_pipeline  # noqa: F401
from faces.ops import cli_admin  # noqa: F401
from faces.ops import cli_models  # noqa: F401
from faces.ops import cli_health  # noqa: F401
from faces.ops import cli_export  # noqa: F401
from faces.ops import cli_serve  # noqa: F401
from faces.ops import cli_browse  # noqa: F401
from faces.ops.cli_app import app, main, unwrap_help

unwrap_help(app)  # once every command is registered

__all__ = ["app", "main"]


if __name__ == "__main__":
    main()
