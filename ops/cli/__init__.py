"""The `faces` command: the typer app and one module per group of commands. Imported only by the entry points (the console script, `python -m faces`, `python -m faces.ops`) and tests; it may import every other room of ops/."""

from faces.ops.cli.main import app, main

__all__ = ["app", "main"]
