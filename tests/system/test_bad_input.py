"""Bad and awkward input through the whole pipeline: every file ends as a result with a clear
reason, nothing crashes, the good photos beside them finish, and `faces run` exits 3."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.corpus import BAD, GOOD, write_corpus
from tests.images import DATA
from tests.pipeline import faces_cli, result_files


def test_bad_input_gives_error_results_and_good_photos_finish(tmp_path, redis_url, monkeypatch):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "no-weights"))
    folder = tmp_path / "mixed"
    write_corpus(folder)
    shutil.copy(DATA / "group.jpg", folder / "group.jpg")
    (folder / "readme.txt").write_text("not an image name: skipped and counted")
    storage = tmp_path / "storage"
    done = faces_cli(
        "run",
        str(folder),
        "--redis-url",
        redis_url,
        "--storage",
        str(storage),
        "--output",
        str(tmp_path / "output"),
        "--timeout-s",
        "240",
    )
    console = done.stdout + done.stderr
    assert done.returncode == 3, console
    assert "Traceback" not in console
    assert "1 other file skipped" in console
    by_name = {Path(r["image"]["path"]).name: r for r in result_files(storage).values()}
    assert sorted(by_name) == sorted([*BAD, *GOOD, "group.jpg"])
    for name, reason in BAD.items():
        result = by_name[name]
        assert result["status"] == "error", name
        assert result["error"]["type"] == reason, (name, result["error"])
        assert result["error"]["message"], name
    for name, faces in {**GOOD, "group.jpg": 4}.items():
        result = by_name[name]
        assert result["status"] == "ok", (name, result["error"])
        assert len(result["faces"]) == faces, name
    huge = by_name["huge_header.png"]["error"]["message"]
    assert "30000x30000" in huge
    for result_file in storage.iterdir():  # names stay inside storage whatever the input name
        assert result_file.parent == storage and not result_file.name.startswith(".")
    assert json.loads((storage / next(p.name for p in storage.glob("my_photo*"))).read_text())["image"][
        "path"
    ].endswith("my photo é 写真.jpg")
