"""The README documents the CLI that exists: its generated command reference (every command,
every option with env var and default, the exit codes) is what ops/clidocs.py prints from the
CLI itself, its hand-written command table names exactly the commands there are, and every
option and argument has help text."""

from __future__ import annotations

import re

import typer.main

from faces.ops import exits
from faces.ops.cli import app
from faces.ops.clidocs import EXIT_MEANINGS, commands, reference
from tests.pipeline import REPO

README = (REPO / "README.md").read_text()


def test_the_readme_command_reference_is_generated_from_the_cli():
    assert reference() in README, "README.md's command reference is stale: run `make docs`"


def test_the_readme_command_table_names_every_command_and_no_other():
    section = README[README.index("## Commands"):README.index("### Command reference")]
    documented = set(re.findall(r"^\| `(faces [a-z-]+)", section, flags=re.M))
    # `faces dlq list`, `faces dlq show`...: one row for the group.
    existing = {" ".join(name.split()[:2]) for name, _ in commands(typer.main.get_command(app))}
    assert documented == existing


def test_every_exit_code_is_documented():
    codes = {value for name, value in vars(exits).items() if name.isupper()}
    assert set(EXIT_MEANINGS) == codes


def test_every_option_and_argument_has_help():
    top = typer.main.get_command(app)
    missing = [f"{name} {param.name}" for name, command in commands(top) for param in command.params
               if not getattr(param, "help", None)]
    assert missing == []


def test_up_and_replay_take_the_analysis_options_of_run():
    by_name = dict(commands(typer.main.get_command(app)))

    def options(name: str) -> set[str]:
        return {o for p in by_name[name].params if p.param_type_name == "option" for o in p.opts}

    analysis = {"--detector", "--agegender", "--batch", "--visualize"}
    assert analysis <= options("faces run")
    assert analysis | {"--high-water"} <= options("faces up")
    assert analysis <= options("faces replay")
    detector_help = next(p.help for p in by_name["faces run"].params if "--detector" in p.opts)
    assert "dlib-hog, opencv-haar, dlib-cnn, opencv-yunet" in detector_help  # the choices are listed
