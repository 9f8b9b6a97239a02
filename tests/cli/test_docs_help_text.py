"""Issue 26 item 14: `faces --help` and each command's --help read as prose wrapped at the
terminal's width, not cut a second time where the docstring's source lines ended."""

from __future__ import annotations

import re

import pytest

from tests.pipeline import faces_cli

WIDTH = 80
BORDER = "│"


def ragged(lines: list[str]) -> list[str]:
    """Lines of one wrapped paragraph that end although the next line's first word would have
    fitted after them: the widest line shows the width the text is wrapped at."""
    width = max((len(line) for line in lines), default=0)
    return [
        f"{line!r} before {nxt!r}"
        for line, nxt in zip(lines, lines[1:])
        if nxt and len(line) + 1 + len(nxt.split()[0]) <= width
    ]


def command_panel_entries(text: str) -> list[list[str]]:
    """The Commands panel of `faces --help`: each command's description, one line per row."""
    panel = text[text.index("─ Commands ─") :]
    rows = [line.strip().strip(BORDER).rstrip() for line in panel.splitlines()[1:] if line.startswith(BORDER)]
    indent = len(re.match(r"\s*\S+\s+", rows[0]).group(0))
    entries: list[list[str]] = []
    for row in rows:
        if row[:indent].strip():
            entries.append([row[indent:].strip()])
        else:
            entries[-1].append(row[indent:].strip())
    return entries


def description_paragraphs(text: str) -> list[list[str]]:
    """The description under `Usage:` of a command's --help, as paragraphs of lines."""
    body = text[text.index("Usage:") : text.index("╭")].splitlines()[1:]
    paragraphs: list[list[str]] = [[]]
    for line in body:
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


def test_the_command_list_is_wrapped_only_at_the_width():
    """In `faces --help` (80 columns) no command's description breaks a line early."""
    done = faces_cli("--help", env={"COLUMNS": str(WIDTH)})
    assert done.returncode == 0
    entries = command_panel_entries(done.stdout)
    assert len(entries) >= 15
    assert [line for entry in entries for line in ragged(entry)] == []


@pytest.mark.parametrize("command", ["run", "health", "replay", "serve", "export"])
def test_a_commands_help_is_wrapped_only_at_the_width(command):
    """`faces COMMAND --help` (80 columns): no paragraph of the description breaks a line early."""
    done = faces_cli(command, "--help", env={"COLUMNS": str(WIDTH)})
    assert done.returncode == 0
    paragraphs = description_paragraphs(done.stdout)
    assert paragraphs
    assert [line for paragraph in paragraphs for line in ragged(paragraph)] == []
