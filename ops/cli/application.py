"""The `faces` application object and what every command module shares: failing with one line,
the global --debug / --version options, and the entry point that turns every known failure into
one `error: ...` line and its exit code (a traceback only with --debug or FACES_DEBUG=1)."""

from __future__ import annotations

import inspect
import os
import re
import sys
from typing import Annotated, NoReturn

import typer
import typer.main
from typer.core import TyperGroup

from faces.errors import FacesError
from faces.ops import exits, interrupts

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Face analysis pipeline on Redis Streams: boxes, 68 landmarks, pose, age, gender.",
)

EXIT_FAILED = exits.FAILED


def command_tree() -> TyperGroup:
    """The command group typer builds of `app` (every command registered), for reading its
    commands and options (`faces docs`, `faces up --serve`'s checks)."""
    group = typer.main.get_command(app)
    if not isinstance(group, TyperGroup):  # typer makes a group of an app with sub-commands
        raise TypeError(f"the faces command is a {type(group).__name__}, not a group")
    return group


DEBUG_ENV = "FACES_DEBUG"


class CommandError(FacesError):
    """A failure the user can act on: its message is the one line printed, `exit_code` the code."""

    def __init__(self, message: str, exit_code: int = exits.FAILED):
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, code: int = exits.FAILED) -> NoReturn:
    """Print ``error: message`` to stderr and exit with `code` (1: could not run)."""
    raise CommandError(message, code)


def usage(message: str) -> NoReturn:
    """A bad value or combination of options: one line, exit 2."""
    raise CommandError(message, exits.USAGE)


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"faces {version('faces-pipeline')}")
        except PackageNotFoundError:
            typer.echo("faces (not installed)")
        raise typer.Exit(exits.OK)


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", help=f"Show tracebacks (same as {DEBUG_ENV}=1).")] = False,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Face analysis pipeline on Redis Streams: boxes, 68 landmarks, pose, age, gender."""
    if debug:
        os.environ[DEBUG_ENV] = "1"  # worker processes started from here inherit it


def unwrap_help(typer_app: typer.Typer) -> None:
    """Give every command its docstring as help with each paragraph on one line. Typer keeps a
    docstring's line breaks (after the first paragraph, and in the command list), so the help
    came out ragged: a line wrapped at the terminal's width, then cut again at the source's."""
    for command in typer_app.registered_commands:
        if command.help is None and command.callback is not None:
            command.help = _paragraphs(inspect.getdoc(command.callback) or "")
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            unwrap_help(group.typer_instance)


def _paragraphs(text: str) -> str:
    return "\n\n".join(" ".join(part.split()) for part in text.split("\n\n"))


# Typer (0.29 and later) vendors click: its exception base class is reached through a public one.
_CLICK_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _show_click_error(exc) -> int:
    """Usage errors as one line (click's message, squeezed); `faces dlq` alone shows its help."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        typer.echo(exc.ctx.get_help())
        return exits.USAGE
    ctx = getattr(exc, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    message = re.sub(
        r"\(env var: '\[?([^)]*?)\]?'\)",
        lambda m: f"(env var {m.group(1)})".replace("'", ""),
        " ".join(exc.format_message().split()),
    )
    typer.echo(f"error: {message}{hint}", err=True)
    return exc.exit_code


def main(argv: list[str] | None = None) -> NoReturn:
    """Run `faces`; every failure ends as one line on stderr and an exit code from ops/exits.py."""
    # SIGTERM (docker stop, kill) stops every command as Ctrl-C does: what finished is kept, the
    # exit is 130. As a container's PID 1, `faces` would otherwise ignore SIGTERM altogether.
    interrupts.install(sigterm=True)
    try:
        code = app(args=argv, prog_name="faces", standalone_mode=False)
    except _CLICK_ERROR as exc:
        code = _show_click_error(exc)
    except typer.Abort:
        code = exits.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place every failure is turned into a line
        if debug_enabled():
            raise
        from faces.ops.failures import describe_failure

        code, line = describe_failure(exc)
        typer.echo(f"error: {line}", err=True)
    sys.stdout.flush()
    sys.exit(code if isinstance(code, int) else exits.OK)
