"""`faces export`: the results in a --storage folder as one CSV or JSON Lines file.

Reads the JSON files the sinks wrote (no Redis needed, so it works after `faces run` stopped);
the columns are schemas/table.py's, the same as GET /v1/export's."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from faces.consumers.storage import write_atomic
from faces.errors import FacesError
from faces.schemas import table
from faces.schemas.result import RESULT_SCHEMA


class NoResults(FacesError, RuntimeError):
    """The --storage folder holds no result files.

    Cause: the wrong folder, or nothing was analysed yet. Remedy: give the --storage folder of
    a `faces run` or `faces up` (default `storage/`), or run `faces run DIR` first."""

    exit_code = 1


@dataclass
class StoredResults:
    """The readable results of a storage folder, in file order, and the files that are not."""

    results: list[dict] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


def read_storage(folder: Path) -> StoredResults:
    """Every `*.json` result in `folder`, in image id order (each file is named after its image
    id; the sink's temporary files end in .tmp: never matched). A file that is not a result document is named in `unreadable`."""
    if not folder.is_dir():
        raise NoResults(f"{folder} is not a folder: give the --storage folder of a `faces run` or `faces up`")
    found = StoredResults()
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stem):  # image id order, as GET /v1/export
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            found.unreadable.append((path, f"not readable as JSON ({' '.join(str(exc).split())})"))
            continue
        if not isinstance(document, dict) or document.get("schema") != RESULT_SCHEMA:
            found.unreadable.append((path, f"not a {RESULT_SCHEMA} result"))
            continue
        found.results.append(document)
    if not found.results and not found.unreadable:
        raise NoResults(
            f"no results in {folder}/: run `faces run DIR` first, or give the --storage folder that holds them"
        )
    return found


def export_text(results: list[dict], fmt: table.Format, per: table.Per) -> Iterator[str]:
    """The export of `results` as chunks of text."""
    return table.render(table.rows(results, per), fmt, per)


def write_export(chunks: Iterator[str], target: Path | None) -> None:
    """To `target` (written whole, then renamed into place: a half export never shows), or to
    stdout when None."""
    if target is None:
        _to_stdout(chunks)
        return
    write_atomic(target, "".join(chunks).encode("utf-8"))


def _to_stdout(chunks: Iterator[str]) -> None:
    """The bytes as they are (UTF-8, the CSV's CRLF kept). A reader that stops early
    (`faces export | head`) is no failure: the rest is dropped quietly."""
    sys.stdout.flush()
    out = sys.stdout.buffer
    try:
        for chunk in chunks:
            out.write(chunk.encode("utf-8"))
        out.flush()
    except BrokenPipeError:
        # Python would report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
