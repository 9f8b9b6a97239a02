"""Issue 22 item 6: long non-Latin file names. A name's limit counts UTF-8 bytes (a CJK letter is 3,
an emoji 4), not characters, wherever a name becomes a file: every image below ends as an ok result
whose JSON (and annotated picture) has a name within 255 bytes, through `faces run`, `faces submit`,
`faces watch` and an upload, and nothing is dead-lettered (`File name too long`, before)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from faces.ops.supervise.pool import WorkerPool
from faces.streams import names
from tests.api_server import start_api
from tests.images import DATA
from tests.pipeline import REPO, faces_cli, result_files
from tests.waiting import wait_until
from tests.worker_pools import stage_pool

NAME_MAX_BYTES = 255
# Names as long as a file system takes (up to 255 bytes): 83 letters of 3 bytes; emoji between
# CJK letters; 60 CJK letters of 4 bytes (plane 2). Cut to 80 characters, the first and the last
# made image ids of 240 bytes, whose files' names passed 255 bytes.
LONG_NAMES = {
    "cjk": "漢字写真" * 20 + "漢字写.jpg",
    "emoji": "😀家族写真🎉" * 12 + ".jpg",
    "plane2": "𠀋𡈽𡌛" * 20 + ".jpg",
}


def photo_named(folder: Path, name: str, tag: str) -> Path:
    """data/astronaut.jpg (one face) with bytes of its own after the end marker, as `name`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes((DATA / "astronaut.jpg").read_bytes() + f"long name {tag}".encode())
    return path


def dead_letters(client: redis.Redis) -> list[str]:
    return [
        f"{f.get(b'error_type', b'').decode()}: {f.get(b'message', b'').decode()}"
        for _id, f in client.xrange(names.DEAD_LETTERS)
    ]


def assert_fitting_results(storage: Path, output: Path, count: int) -> dict[str, dict]:
    results = result_files(storage)
    assert len(results) == count, sorted(results)
    for image_id, result in results.items():
        assert result["status"] == "ok", result["error"]
        assert len(f"{image_id}.json".encode()) <= NAME_MAX_BYTES
        assert (output / f"{image_id}.jpg").is_file()
    assert [p.name for p in storage.iterdir() if p.name.startswith(".")] == []
    return results


def test_run_analyses_long_cjk_and_emoji_names(tmp_path, redis_url, redis_client):
    """`faces run` on a folder of three long non-Latin names: three ok results (each kept as its
    own file name's stem, cut to fit), exit 0, no dead letter."""
    photos = tmp_path / "photos"
    sent = {kind: photo_named(photos, name, kind) for kind, name in LONG_NAMES.items()}
    storage, output = tmp_path / "storage", tmp_path / "output"
    done = faces_cli(
        "run",
        str(photos),
        "--redis-url",
        redis_url,
        "--state-dir",
        str(tmp_path / "state"),
        "--storage",
        str(storage),
        "--output",
        str(output),
        "--timeout-s",
        "240",
    )
    assert dead_letters(redis_client) == []
    assert done.returncode == 0, done.stdout + done.stderr
    results = assert_fitting_results(storage, output, len(LONG_NAMES))
    assert sorted(r["image"]["path"] for r in results.values()) == sorted(str(p) for p in sent.values())
    assert {image_id.split("-")[0][:4] for image_id in results} == {"漢字写真", "_家族写", "𠀋𡈽𡌛𠀋"}


@pytest.fixture
def workers(tmp_path, redis_url) -> Iterator[WorkerPool]:
    pool = stage_pool(redis_url, tmp_path)
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


def test_submit_watch_and_upload_of_long_names_end_as_results(tmp_path, redis_url, redis_client, workers):
    """The same three names through `faces submit`, a `faces watch` drop folder and an HTTP upload
    (multipart file name): nine ok results, each file name within 255 bytes, each upload kept
    under --uploads (its temporary file fitting too), no dead letter and no 500."""
    storage, output = tmp_path / "storage", tmp_path / "output"
    submitted = [photo_named(tmp_path / "submit", name, f"submit {kind}") for kind, name in LONG_NAMES.items()]
    done = faces_cli("submit", *map(str, submitted), "--redis-url", redis_url, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    log = open(tmp_path / "watch.log", "wb")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "faces", "watch", str(inbox), "--redis-url", redis_url, "--settle-s", "0.2"],
        cwd=REPO,
        stdout=log,
        stderr=log,
        env={**os.environ},
    )
    api = start_api(redis_url, tmp_path)
    try:
        staged = tmp_path / "staged"
        for kind, name in LONG_NAMES.items():  # made aside, then moved in whole
            shutil.move(photo_named(staged, name, f"watch {kind}"), inbox / name)
        for kind, name in LONG_NAMES.items():
            sent = api.http.post(
                "/v1/images",
                files={"file": (name, photo_named(tmp_path / "up", name, f"upload {kind}").read_bytes(), "image/jpeg")},
            )
            assert sent.status_code == 202, sent.text
        count = 3 * len(LONG_NAMES)
        wait_until(
            lambda: len(result_files(storage)) + len(dead_letters(redis_client)) >= count,
            timeout_s=180,
            what=f"{count} results or dead letters",
        )
    finally:
        api.stop()
        watcher.terminate()
        watcher.wait(timeout=30)
        log.close()
    assert dead_letters(redis_client) == []
    results = assert_fitting_results(storage, output, count)
    paths = [Path(r["image"]["path"]) for r in results.values()]
    assert sorted(p.name for p in paths if p.is_relative_to(tmp_path / "submit")) == sorted(LONG_NAMES.values())
    assert sorted(p.name for p in paths if p.is_relative_to(inbox)) == sorted(LONG_NAMES.values())
    kept = [p for p in paths if p.is_relative_to(tmp_path / "uploads")]
    assert len(kept) == len(LONG_NAMES) and all(len(p.name.encode()) <= NAME_MAX_BYTES for p in kept)
