"""Issue 26 item 10: one file for a whole batch. `faces export` turns the JSON results of a
--storage folder into one CSV (for spreadsheets) or JSON Lines file, one row per face or per
image; GET /v1/export gives the same table from the results Redis holds.

One real `faces run` for the module, against a real redis-server that the API then serves
from, over: a photo with four faces, one with one, one with none, a file that is not an image
(an error result), and a one-face photo with a non-ASCII name."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from faces.streams.embedded import EmbeddedRedis
from tests.api_server import start_api, start_redis
from tests.images import DATA
from tests.pipeline import faces_cli

# The contract, spelled out: the columns a spreadsheet user builds on.
IMAGE_LEAD = ["file", "image_id", "status", "error_stage", "error_type", "error_message"]
FACE_COLUMNS = [
    "face",
    "box_x",
    "box_y",
    "box_w",
    "box_h",
    "score",
    "age",
    "age_p10",
    "age_p90",
    "gender",
    "gender_confidence",
    "yaw",
    "pitch",
    "roll",
    "sharpness",
    "brightness",
    "contrast",
]
IMAGE_TAIL = [
    "width",
    "height",
    "sha256",
    "detector",
    "agegender_model",
    "submitted_at",
    "processed_at",
    "job_id",
    "metadata",
]
PER_FACE = [*IMAGE_LEAD, *FACE_COLUMNS, *IMAGE_TAIL]
PER_IMAGE = [*IMAGE_LEAD, "faces", *IMAGE_TAIL]
FACES_PER_FILE = {"group": 4, "astronaut": 1, "no_face": 0, "broken": 0, "фото": 1}


@dataclass
class Batch:
    folder: Path
    storage: Path
    redis: EmbeddedRedis


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Iterator[Batch]:
    """The five files analysed by one `faces run` (exit 3: the broken file is an error result)."""
    folder = tmp_path_factory.mktemp("export")
    photos = folder / "photos"
    photos.mkdir()
    for name in ("group", "astronaut", "no_face"):
        (photos / f"{name}.jpg").write_bytes((DATA / f"{name}.jpg").read_bytes())
    (photos / "broken.jpg").write_bytes(b"this is not a picture")
    (photos / "фото.jpg").write_bytes((DATA / "astronaut.jpg").read_bytes() + b"a copy")
    server = start_redis(folder)
    try:
        done = faces_cli(
            "run",
            str(photos),
            "--redis-url",
            server.url,
            "--storage",
            str(folder / "storage"),
            "--no-visualize",
            "--agegender",
            "dlib",
        )
        assert done.returncode == 3, done.stdout + done.stderr
        yield Batch(folder, folder / "storage", server)
    finally:
        server.stop()


def export(storage: Path, *args: str):
    return faces_cli("export", "--storage", str(storage), *args, env={"FACES_REDIS_URL": ""})


def parse_csv(data: bytes) -> list[dict[str, str]]:
    """The CSV as a spreadsheet would read it: a UTF-8 BOM, then RFC 4180 rows."""
    assert data.startswith("\ufeff".encode())
    text = data.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header, *rows = list(reader)
    return [dict(zip(header, row, strict=True)) for row in rows], header


def stem(row: dict) -> str:
    return Path(row["file"].lstrip("'")).stem


def test_csv_per_face_has_one_row_per_face_and_one_per_image_without_faces(batch, tmp_path):
    """`faces export -o FILE` (CSV, per face, the defaults) writes one row per face, and one row
    with empty face columns for an image with no face or an error result: 4+1+0+0+1 faces
    and two such rows, 8 rows under the documented header, CRLF line ends, in image id order."""
    target = tmp_path / "faces.csv"
    done = export(batch.storage, "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "5 results exported to" in done.stderr
    data = target.read_bytes()
    rows, header = parse_csv(data)
    assert header == PER_FACE
    assert data.count(b"\r\n") == 9 and data.count(b"\n") == 9  # header + 8 rows, CRLF each
    assert len(rows) == 8
    for name, faces in FACES_PER_FILE.items():
        mine = [r for r in rows if stem(r) == name]
        assert [r["face"] for r in mine] == ([str(i) for i in range(1, faces + 1)] or [""]), name
    assert [r["image_id"] for r in rows] == sorted(r["image_id"] for r in rows)
    broken = next(r for r in rows if stem(r) == "broken")
    assert broken["status"] == "error" and broken["error_type"] and broken["error_message"]
    assert all(broken[c] == "" for c in FACE_COLUMNS)
    no_face = next(r for r in rows if stem(r) == "no_face")
    assert no_face["status"] == "ok" and all(no_face[c] == "" for c in FACE_COLUMNS)
    stored = json.loads((batch.storage / f"{rows[0]['image_id']}.json").read_text())
    first = stored["faces"][0]
    assert (float(rows[0]["age"]), rows[0]["gender"], float(rows[0]["yaw"]), int(rows[0]["box_w"])) == (
        first["age"],
        first["gender"]["label"],
        first["pose"]["yaw"],
        first["box"]["w"],
    )


def copy_storage(batch: Batch, folder: Path) -> Path:
    folder.mkdir()
    for path in batch.storage.glob("*.json"):
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_csv_cells_that_would_be_formulas_stay_text(batch, tmp_path):
    """Text cells starting with = + - @ (here a result whose image id, path and error message a
    spreadsheet would run as formulas) get a leading apostrophe, so a spreadsheet shows them as
    text; negative numbers (pose angles) stay plain numbers; non-ASCII names come through."""
    storage = copy_storage(batch, tmp_path / "storage")
    broken = json.loads(next(batch.storage.glob("broken-*.json")).read_text())
    image_id = "=HYPERLINK(1)-0000abcd"
    broken.update(
        image_id=image_id,
        image={**broken["image"], "path": "+cmd.jpg"},
        error={**broken["error"], "message": "@SUM(1)"},
    )
    (storage / f"{image_id}.json").write_text(json.dumps(broken))
    done = export(storage)
    assert done.returncode == 0, done.stderr
    rows, _ = parse_csv(done.stdout.encode())  # read as text: its CRLF came through as LF
    formula = [r for r in rows if r["image_id"] == "'" + image_id]
    assert len(formula) == 1
    assert (formula[0]["file"], formula[0]["error_message"]) == ("'+cmd.jpg", "'@SUM(1)")
    angles = [r[c] for r in rows for c in ("yaw", "pitch", "roll") if r[c]]
    assert any(a.startswith("-") for a in angles) and all(float(a) == float(a) for a in angles)
    assert sum(1 for r in rows if stem(r) == "фото") == 1


def test_jsonl_per_image_has_one_object_per_image(batch):
    """`--format jsonl --per image` prints one JSON object per image to stdout: the per-image
    columns, numbers as numbers, null where empty, the face count of each."""
    done = export(batch.storage, "--format", "jsonl", "--per", "image")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 5
    rows = [json.loads(line) for line in lines]
    assert all(list(r) == PER_IMAGE for r in rows)
    assert {Path(r["file"]).stem: r["faces"] for r in rows} == FACES_PER_FILE
    broken = next(r for r in rows if Path(r["file"]).stem == "broken")
    assert broken["status"] == "error" and broken["width"] is None and broken["faces"] == 0


def test_files_that_are_not_results_are_named_and_the_rest_exported(batch, tmp_path):
    """A file in --storage that is not a result (a half-written JSON) is named on stderr and the
    exit is 3; every real result is still exported."""
    storage = copy_storage(batch, tmp_path / "storage")
    (storage / "notes.json").write_text('{"half": ')
    done = export(storage, "--per", "image", "--format", "jsonl")
    assert done.returncode == 3
    assert len(done.stdout.splitlines()) == 5
    assert f"skipped {storage / 'notes.json'}: not readable as JSON" in done.stderr


def test_a_folder_without_results_is_one_line_and_exit_1(tmp_path):
    """An empty or missing --storage is one line naming the remedy, exit 1, nothing on stdout."""
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        done = export(folder)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
        assert "faces run" in done.stderr


def test_the_api_exports_the_same_table_from_redis(batch, tmp_path):
    """GET /v1/export answers the results in Redis as the very same CSV bytes `faces export`
    writes from the files, with a CSV content type and an attachment file name; ?format=jsonl
    &per=image gives the JSON Lines table; a bad format is a 400."""
    api = start_api(batch.redis.url, tmp_path)
    try:
        answer = api.http.get("/v1/export")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert answer.headers["content-disposition"] == 'attachment; filename="faces-results.csv"'
        assert export(batch.storage, "-o", str(tmp_path / "cli.csv")).returncode == 0
        assert answer.content == (tmp_path / "cli.csv").read_bytes()
        lines = api.http.get("/v1/export", params={"format": "jsonl", "per": "image"})
        assert lines.headers["content-type"] == "application/jsonl; charset=utf-8"
        assert lines.text == export(batch.storage, "--format", "jsonl", "--per", "image").stdout
        assert api.http.get("/v1/export", params={"format": "xlsx"}).status_code == 400
        assert api.http.get("/v1/export", headers={"Authorization": ""}).status_code == 401
    finally:
        api.stop()
