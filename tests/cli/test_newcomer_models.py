"""`faces models check` as a newcomer reads it (issue 26 item 13): it leads with what will run,
lists the bundled networks' files that actually run, and names DeepFace's files as what could
be fetched, not as what is wrong."""

from __future__ import annotations

import json

from tests.pipeline import faces_cli


def _env(tmp_path) -> dict[str, str]:
    """An empty DEEPFACE_HOME (no DeepFace weights) and a private sha256 cache."""
    return {"DEEPFACE_HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache"), "FACES_WEIGHTS_URL": ""}


def test_check_without_deepface_weights_leads_with_the_bundled_networks_that_run(tmp_path):
    """Without DeepFace's weights the first lines say what runs (dlib-hog, the 68-point model,
    the bundled networks, each file ok), then that DeepFace's files could be fetched; the table
    lists the bundled networks' three files, sha256-verified against the package's manifest,
    before DeepFace's missing ones."""
    run = faces_cli("models", "check", env=_env(tmp_path))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("will run")
    assert lines[1].split()[:2] == ["detect", "dlib-hog"]
    assert lines[2].split()[:3] == ["landmarks", "dlib-shape-predictor-68", "(ok)"]
    assert lines[3].startswith(
        "  age/gender  the bundled dlib networks, offline: bundled-age-v1 (ok), "
        "bundled-gender-v1 (ok), bundled-shape-predictor-5 (ok)"
    )
    assert lines[4].startswith("could be fetched: deepface-age, deepface-gender")
    assert "faces models fetch" in lines[4]
    table = lines[lines.index("") + 1 :]
    rows = [row.split()[0] for row in table[1:] if not row.startswith("age/gender backend")]
    assert rows[:4] == ["dlib-shape-predictor-68", "bundled-age-v1", "bundled-gender-v1", "bundled-shape-predictor-5"]
    assert rows.index("deepface-age") > 3
    for row in table[2:5]:
        assert row.split()[1] == "ok" and row.split()[4] == "yes", row  # name ok size unit verified


def test_check_json_marks_the_files_that_run(tmp_path):
    """--json lists the bundled networks' files too, each with `runs`: true for what the
    default options run, false for DeepFace's absent files."""
    run = faces_cli("models", "check", "--json", env=_env(tmp_path))
    assert run.returncode == 0, run.stderr
    rows = {row["name"]: row for row in json.loads(run.stdout)}
    assert {name for name, row in rows.items() if row["runs"]} == {
        "dlib-shape-predictor-68",
        "bundled-age-v1",
        "bundled-gender-v1",
        "bundled-shape-predictor-5",
    }
    assert rows["bundled-age-v1"]["verified"] == "yes"
    assert rows["deepface-age"]["status"] == "missing" and not rows["deepface-age"]["runs"]
