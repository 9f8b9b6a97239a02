"""Results as a table: the columns of `faces export` and GET /v1/export, defined once.

One row per face (images without faces, error results included, still get one row with the face
columns empty, so nothing goes missing from a spreadsheet) or one row per image. Rows are flat
dicts of plain values (text, numbers, None) in column order; `csv_text` and `jsonl_text` render
them. The CSV is meant to open in a spreadsheet as is: UTF-8 with a byte-order mark (Excel reads
UTF-8 only with it), RFC 4180 quoting and CRLF line ends, and text cells that a spreadsheet would
run as a formula are defused.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

Per = Literal["face", "image"]
Format = Literal["csv", "jsonl"]
PER_CHOICES: tuple[Per, ...] = ("face", "image")
FORMAT_CHOICES: tuple[Format, ...] = ("csv", "jsonl")
MEDIA_TYPES: dict[str, str] = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}
BOM = "\ufeff"
# A text cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection"):
# a photo named "=HYPERLINK(...).jpg" must stay text. A leading apostrophe keeps it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Getter = Callable[[dict, dict], Any]  # (result, face or {}) -> the cell's value


def _get(*keys: str | int) -> Getter:
    """A face field by its path (`box`, `x`); None where any step is missing."""

    def get(_result: dict, face: dict) -> Any:
        value: Any = face
        for key in keys:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                return None
        return value

    return get


def _of_result(*keys: str) -> Getter:
    """A result field by its path (`image`, `path`)."""
    inner = _get(*keys)
    return lambda result, _face: inner({}, result)


def _metadata(result: dict, _face: dict) -> str | None:
    """The submitter's own fields (HTTP uploads), as compact JSON text in one cell."""
    found = result.get("metadata")
    return json.dumps(found, ensure_ascii=False, separators=(",", ":"), sort_keys=True) if found else None


# The columns that describe the image, in order; the face columns go between LEAD and TAIL.
_LEAD: tuple[tuple[str, Getter], ...] = (
    ("file", _of_result("image", "path")),
    ("image_id", _of_result("image_id")),
    ("status", _of_result("status")),
    ("error_stage", _of_result("error", "stage")),
    ("error_type", _of_result("error", "type")),
    ("error_message", _of_result("error", "message")),
)
_FACE: tuple[tuple[str, Getter], ...] = (
    ("box_x", _get("box", "x")),
    ("box_y", _get("box", "y")),
    ("box_w", _get("box", "w")),
    ("box_h", _get("box", "h")),
    ("score", _get("score")),
    ("age", _get("age")),
    ("age_p10", _get("age_range", 0)),
    ("age_p90", _get("age_range", 1)),
    ("gender", _get("gender", "label")),
    ("gender_confidence", _get("gender", "confidence")),
    ("yaw", _get("pose", "yaw")),
    ("pitch", _get("pose", "pitch")),
    ("roll", _get("pose", "roll")),
    ("sharpness", _get("quality", "sharpness")),
    ("brightness", _get("quality", "brightness")),
    ("contrast", _get("quality", "contrast")),
)
_TAIL: tuple[tuple[str, Getter], ...] = (
    ("width", _of_result("image", "width")),
    ("height", _of_result("image", "height")),
    ("sha256", _of_result("image", "sha256")),
    ("detector", _of_result("models", "detector")),
    ("agegender_model", _of_result("models", "agegender")),
    ("submitted_at", _of_result("submitted_at")),
    ("processed_at", _of_result("processed_at")),
    ("job_id", _of_result("job_id")),
    ("metadata", _metadata),
)
# Per face: which face of the image (1, 2, ...; empty for an image without faces) and its fields.
_FACE_INDEX = "face"
# Per image: how many faces it has.
_FACE_COUNT = "faces"


def columns(per: Per) -> list[str]:
    """The header, in order."""
    middle = [_FACE_INDEX, *(name for name, _ in _FACE)] if per == "face" else [_FACE_COUNT]
    return [*(name for name, _ in _LEAD), *middle, *(name for name, _ in _TAIL)]


def rows(results: Iterable[dict], per: Per) -> Iterator[dict[str, Any]]:
    """The rows of `results` (result documents, faces.result/1), in their order."""
    for result in results:
        faces = result.get("faces") or []
        if per == "image":
            yield _row(result, {}, {_FACE_COUNT: len(faces)}, with_face=False)
            continue
        for index, face in enumerate(faces or [None], start=1):
            yield _row(result, face or {}, {_FACE_INDEX: index if face else None}, with_face=True)


def _row(result: dict, face: dict, middle: dict[str, Any], *, with_face: bool) -> dict[str, Any]:
    row = {name: get(result, face) for name, get in _LEAD}
    row.update(middle)
    if with_face:
        row.update({name: get(result, face) for name, get in _FACE})
    row.update({name: get(result, face) for name, get in _TAIL})
    return row


def render(table_rows: Iterable[dict[str, Any]], fmt: Format, per: Per) -> Iterator[str]:
    """The export as chunks of text: CSV (a BOM, then the header) or JSON Lines."""
    return csv_text(table_rows, per) if fmt == "csv" else jsonl_text(table_rows)


def csv_text(table_rows: Iterable[dict[str, Any]], per: Per) -> Iterator[str]:
    """CSV for spreadsheets: a BOM, the header, one line per row (CRLF, quoted where needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns(per))
    yield BOM + _drain(buffer)
    for row in table_rows:
        writer.writerow([_cell(value) for value in row.values()])
        yield _drain(buffer)


def jsonl_text(table_rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON object per line, values as they are (numbers stay numbers, empty is null)."""
    for row in table_rows:
        yield json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _cell(value: Any) -> Any:
    """A CSV cell: empty for None; text that would start a formula gets a leading apostrophe
    (numbers, negative ones too, are written as numbers and left alone)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
