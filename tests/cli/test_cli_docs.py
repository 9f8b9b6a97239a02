"""The documentation describes the CLI that exists: the command reference in docs/commands.md
(every command, every option with env var and default, the exit codes) is what ops/cli/docs.py
prints from the CLI itself, the README's hand-written command table names exactly the commands
there are, every option and argument has help text, and every relative link between the README
and docs/ points at a file (and heading) that exists."""

from __future__ import annotations

import re

import typer.main

from faces.ops import exits
from faces.ops.cli import app
from faces.ops.cli.docs import DEFAULT_TARGET, EXIT_MEANINGS, commands, reference
from tests.pipeline import REPO

README = (REPO / "README.md").read_text()
COMMANDS_DOC = REPO / DEFAULT_TARGET
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_the_command_reference_is_generated_from_the_cli():
    assert reference() in COMMANDS_DOC.read_text(), f"{DEFAULT_TARGET}'s command reference is stale: run `make docs`"


def test_the_readme_command_table_names_every_command_and_no_other():
    start = README.index("\n## Commands")
    section = README[start : README.index("\n## ", start + 1)]
    documented = set(re.findall(r"^\| `(faces [a-z-]+)", section, flags=re.M))
    # `faces dlq list`, `faces dlq show`...: one row for the group.
    existing = {" ".join(name.split()[:2]) for name, _ in commands(typer.main.get_command(app))}
    assert documented == existing


def test_every_exit_code_is_documented():
    codes = {value for name, value in vars(exits).items() if name.isupper()}
    assert set(EXIT_MEANINGS) == codes


def test_every_option_and_argument_has_help():
    top = typer.main.get_command(app)
    missing = [
        f"{name} {param.name}"
        for name, command in commands(top)
        for param in command.params
        if not getattr(param, "help", None)
    ]
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


_FENCE = re.compile(r"^```.*?^```", flags=re.M | re.S)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6} +(.+?) *$", _FENCE.sub("", markdown), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for doc in DOCS:
        text = doc.read_text()
        for target in _LINK.findall(_FENCE.sub("", text)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto: ...
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            if not file.exists():
                broken.append(f"{doc.relative_to(REPO)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text()):
                broken.append(f"{doc.relative_to(REPO)}: {target} (no such heading)")
    assert broken == []
