"""An image named by its sha256 when the same bytes were submitted under two names (issue 26
item 3): `faces result <64 hex>` answers the latest of them (stderr names the other), and
`faces replay --image <64 hex>` replays that latest one; bytes that differ under one prefix are
still refused, naming the candidates. Real CLI, the embedded Redis, real workers and files."""

from __future__ import annotations

import hashlib
import json
import shutil

from faces.ops import exits
from tests.images import DATA
from tests.pipeline import PATH_WITHOUT_REDIS, faces_cli, result_files


def test_a_full_sha256_of_bytes_under_two_names_answers_the_latest(tmp_path):
    """Two copies of one photo (a.jpg, b.jpg) analysed by `faces run`: their 64-hex sha256
    gives the result with the latest submitted_at and names the other image id on stderr;
    replay by that sha256 replays exactly that image (1 ok) and leaves the other result as it
    was."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(DATA / "astronaut.jpg", photos / name)
    sha = hashlib.sha256((DATA / "astronaut.jpg").read_bytes()).hexdigest()
    options = ["--state-dir", str(tmp_path / "state"), "--storage", str(tmp_path / "storage"), "--no-visualize"]
    env = {"PATH": PATH_WITHOUT_REDIS, "DEEPFACE_HOME": str(tmp_path / "no-weights")}
    ran = faces_cli("run", str(photos), "--timeout-s", "240", *options, env=env)
    assert ran.returncode == exits.OK, ran.stdout + ran.stderr
    first = result_files(tmp_path / "storage")
    assert sorted(first) == [f"a-{sha[:8]}", f"b-{sha[:8]}"]
    latest = max(first, key=lambda image_id: first[image_id]["submitted_at"])
    other = next(image_id for image_id in first if image_id != latest)

    shown = faces_cli("result", sha, *options[:4], env=env)
    assert shown.returncode == exits.OK, shown.stderr
    assert json.loads(shown.stdout)["image_id"] == latest
    assert latest in shown.stderr and other in shown.stderr and "same bytes" in shown.stderr

    replayed = faces_cli("replay", "--image", sha, "--timeout-s", "240", *options, env=env)
    assert replayed.returncode == exits.OK, replayed.stdout + replayed.stderr
    assert "replayed 1 image from detect: 1 ok, 0 error, 0 dead-lettered; 0 not replayable" in replayed.stdout
    again = result_files(tmp_path / "storage")
    assert again[latest]["job_id"] != first[latest]["job_id"]
    assert again[other] == first[other]


def test_a_prefix_of_different_bytes_is_still_ambiguous(tmp_path):
    """Two stored results whose sha256s share 8 hex digits but differ after: the 8-digit prefix
    is refused (exit 2), naming both image ids; a full sha256 gives its own image."""
    storage = tmp_path / "storage"
    storage.mkdir()
    shas = ["abcdef01" + "0" * 56, "abcdef01" + "1" * 56]
    for stem, sha in zip(("x", "y"), shas):
        image_id = f"{stem}-{sha[:8]}"
        (storage / f"{image_id}.json").write_text(
            json.dumps(
                {
                    "image_id": image_id,
                    "submitted_at": "2026-01-01T00:00:00.000Z",
                    "image": {"path": f"/nowhere/{stem}.jpg", "sha256": sha},
                }
            )
        )
    options = ["--state-dir", str(tmp_path / "state"), "--storage", str(storage)]
    vague = faces_cli("result", "abcdef01", *options)
    assert vague.returncode == exits.USAGE, vague.stderr
    assert "ambiguous" in vague.stderr and "x-abcdef01" in vague.stderr and "y-abcdef01" in vague.stderr
    exact = faces_cli("result", shas[1], *options)
    assert exact.returncode == exits.OK, exact.stderr
    assert json.loads(exact.stdout)["image_id"] == "y-abcdef01"
