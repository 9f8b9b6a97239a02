"""Licences where a user decides (issue 25): the documented table is the code's, `faces models
check --commercial` refuses the restricted default and passes with `--landmarks 5`, and a run with
5 landmarks says what it has (5 points, which model, no pose and why, quality)."""

from __future__ import annotations

import math
from pathlib import Path

import jsonschema
import pytest

from faces.models.landmarks import MODELS, POSE_UNAVAILABLE, eye_centres, load_landmarker
from faces.models.licences import markdown_table
from faces.ops import exits
from faces.schemas.result import load_schema
from tests.images import DATA
from tests.pipeline import REPO, faces_cli, result_files


@pytest.fixture
def no_weights(tmp_path) -> dict[str, str]:
    """An empty DEEPFACE_HOME (a fresh machine: the bundled age/gender networks run) and the
    landmark and age/gender choices unset, whatever the calling shell has."""
    home = tmp_path / "deepface-empty"
    home.mkdir()
    return {
        "DEEPFACE_HOME": str(home),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "FACES_LANDMARKS": "",
        "FACES_AGEGENDER": "",
    }


def test_the_documented_licences_table_is_the_code_table():
    """docs/models.md's Licences table holds exactly the rows of models/licences.py, in order:
    the facts `faces models check` shows cannot drift from the documented ones."""
    lines = (REPO / "docs" / "models.md").read_text().splitlines()
    expected = markdown_table()
    start = lines.index(expected[0])
    assert lines[start : start + len(expected)] == expected
    assert not lines[start + len(expected)].startswith("|"), "the documented table has rows the code lacks"


def test_commercial_check_refuses_the_68_point_default_and_passes_with_5_points(no_weights):
    """`faces models check --commercial` exits 2 on the default options, naming the 68-point
    model and `--landmarks 5`; with FACES_LANDMARKS=5 (and the bundled age/gender networks) it
    exits 0 and lists the models as cleared."""
    refused = faces_cli("models", "check", "--commercial", env=no_weights)
    assert refused.returncode == exits.USAGE, refused.stdout + refused.stderr
    [error] = [line for line in refused.stderr.splitlines() if line.startswith("error: commercial use")]
    assert "dlib-shape-predictor-68 is restricted to non-commercial use" in error
    assert "--landmarks 5 (FACES_LANDMARKS=5) avoids it" in error
    # The table flags it too, in its commercial column.
    [row] = [line for line in refused.stdout.splitlines() if line.startswith("dlib-shape-predictor-68 ")]
    assert row.split()[5] == "no"

    passed = faces_cli("models", "check", "--commercial", env={**no_weights, "FACES_LANDMARKS": "5"})
    assert passed.returncode == exits.OK, passed.stdout + passed.stderr
    assert "  landmarks   dlib-shape-predictor-5 (ok)" in passed.stdout.splitlines()
    [cleared] = [line for line in passed.stdout.splitlines() if line.startswith("commercial use:")]
    assert "dlib-shape-predictor-5" in cleared and "dlib-shape-predictor-68" not in cleared


def test_eye_centres_from_the_5_points_are_those_of_the_68(default_detector):
    """DeepFace's chip alignment takes the eye centres from whichever points a face has: from
    the 5 points' eye corners they lie within 5% of the eye distance of the 68 points' centres."""
    from faces.models.decode import decode_image

    pixels = decode_image((DATA / "group.jpg").read_bytes()).pixels
    boxes = [d.box for d in default_detector.detect([pixels])[0]]
    five = load_landmarker(choice="5").locate(pixels, boxes)
    sixty_eight = load_landmarker(choice="68").locate(pixels, boxes)
    assert len(boxes) == 4 and [len(f.points) for f in five] == [5] * 4
    for small, full in zip(five, sixty_eight):
        (left5, right5), (left68, right68) = eye_centres(small.points), eye_centres(full.points)
        span = math.dist(left68, right68)
        assert math.dist(left5, left68) < 0.05 * span and math.dist(right5, right68) < 0.05 * span
        assert small.pose is None and small.quality == full.quality


def test_run_with_5_landmarks_says_which_points_it_has_and_why_pose_is_null(tmp_path, no_weights):
    """`faces run data/ --landmarks 5` through every worker: each face has 5 points, a quality
    and a null pose; each result names dlib-shape-predictor-5 and its notes say why pose is null;
    the results still match the result schema and ages come from the bundled networks."""
    storage = tmp_path / "storage"
    done = faces_cli(
        "run",
        str(DATA),
        "--landmarks",
        "5",
        "--state-dir",
        str(tmp_path / "state"),
        "--storage",
        str(storage),
        "--no-visualize",
        env=no_weights,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = list(result_files(storage).values())
    assert sorted(Path(r["image"]["path"]).name for r in results) == sorted(p.name for p in DATA.glob("*.jpg"))
    schema = load_schema()
    for result in results:
        jsonschema.validate(result, schema)
        assert result["status"] == "ok"
        assert result["models"]["landmarks"] == MODELS["5"]
        assert result["notes"]["landmarks"] == POSE_UNAVAILABLE
    faces = [face for result in results for face in result["faces"]]
    assert len(faces) == 5
    for face in faces:
        assert len(face["landmarks"]) == 5 and face["pose"] is None
        assert set(face["quality"]) == {"sharpness", "brightness", "contrast"} and face["quality"]["sharpness"] > 0
        assert isinstance(face["age"], float)
