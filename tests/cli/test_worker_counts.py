"""`faces run` / `faces up --workers`: how many worker processes each stage gets (issue 16).

One detect worker kept one core at 100 % while the stack used 1.34 of 2 cores; `auto` sizes
each stage by its share of an image's CPU (faces/settings.py STAGE_CPU_SHARE)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from faces.ops import exits
from faces.ops.supervise.counts import BadWorkerCounts, auto_counts, available_cores, describe, parse_counts
from tests.images import DATA
from tests.pipeline import result_files

NO_URL = {"FACES_REDIS_URL": "", "REDIS_URL": ""}


def test_auto_gives_detection_the_cores_and_every_stage_at_least_one():
    """Recognition off: detect has most of the work; on: embed has (the 2026-12-08 benchmark:
    with one embed worker on 2 cores, 1.28 cores were kept busy)."""
    assert auto_counts(1) == {"detect": 1, "landmarks": 1, "agegender": 1, "embed": 1, "sink": 1}
    assert auto_counts(2, recognition=False) == {"detect": 2, "landmarks": 1, "agegender": 1, "embed": 1, "sink": 1}
    assert auto_counts(16, recognition=False) == {"detect": 10, "landmarks": 2, "agegender": 4, "embed": 1, "sink": 1}
    assert describe(auto_counts(2, recognition=False)) == "detect=2,landmarks=1,agegender=1,embed=1,sink=1"
    assert auto_counts(2) == {"detect": 1, "landmarks": 1, "agegender": 1, "embed": 2, "sink": 1}
    assert auto_counts(16) == {"detect": 4, "landmarks": 1, "agegender": 2, "embed": 11, "sink": 1}


def test_named_stages_override_auto_and_the_rest_stay_auto():
    assert parse_counts("auto", cores=2) == auto_counts(2)
    assert parse_counts(" AUTO ", cores=2) == auto_counts(2)
    assert parse_counts("detect=3, agegender=2", cores=2, recognition=False) == {
        "detect": 3,
        "landmarks": 1,
        "agegender": 2,
        "embed": 1,
        "sink": 1,
    }
    assert parse_counts("auto", cores=2, recognition=False) == auto_counts(2, recognition=False)
    for bad in ("detekt=2", "detect=0", "detect", "detect=two", "detect=-1", ""):
        with pytest.raises(BadWorkerCounts):
            parse_counts(bad, cores=2)


def test_run_starts_the_workers_auto_gives_on_these_cores_and_the_ones_asked_for(tmp_path):
    """By default `faces run` starts auto_counts(cores) workers per stage, sized for recognition
    off or on; --workers overrides one stage. Every image still ends as exactly one ok result."""

    def run(state: str, *extra: str) -> dict[str, int]:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "faces",
                "run",
                str(DATA),
                "--state-dir",
                str(tmp_path / state),
                "--storage",
                str(tmp_path / state / "storage"),
                "--no-visualize",
                "--agegender",
                "dlib",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            # Without tests/conftest.py's FACES_WORKERS: the product's own default.
            env={**{k: v for k, v in os.environ.items() if k != "FACES_WORKERS"}, **NO_URL},
        )
        assert done.returncode == exits.OK, done.stderr
        results = result_files(tmp_path / state / "storage")
        assert len(results) == 3 and all(r["status"] == "ok" for r in results.values())
        started = sorted(p.stem for p in (tmp_path / state / "logs").glob("*.log"))
        return {stage: sum(name.rsplit("-", 1)[0] == stage for name in started) for stage in auto_counts(1)}

    cores = available_cores()
    assert run("auto", "--no-recognition") == auto_counts(cores, recognition=False)
    chosen = run("chosen", "--recognition", "--workers", "detect=3,sink=2")
    assert chosen == {**auto_counts(cores, recognition=True), "detect": 3, "sink": 2}
