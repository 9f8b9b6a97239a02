"""What a worker process imports: only what its own stage needs.

`faces run` starts five or six workers at once on a machine of a few cores, and each one's
imports are paid again in every process (docs/benchmark.md, "Cold start"): a worker that imports
another stage's models takes CPU from the ones still starting. The workers run as real processes
(`faces worker STAGE --burst`) against a real Redis; Python's own import log says what they
imported."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline import burst_worker, faces_cli

# Modules only the age/gender worker needs (DeepFace's helpers, h5py through the weight reader)
# and only the landmarks and age/gender workers need (dlib's landmark module).
AGEGENDER_ONLY = ("faces.models.agegender_backends", "faces.models.agegender", "deepface", "h5py")
LANDMARKS_ONLY = ("faces.models.landmarks",)


def imported_modules(stage: str, redis_url: str, tmp_path: Path) -> set[str]:
    """The modules a `faces worker STAGE --burst` process imported, from -X importtime's lines."""
    done = burst_worker(
        stage,
        redis_url,
        tmp_path / "storage",
        env={"PYTHONPROFILEIMPORTTIME": "1", "FACES_AGEGENDER": "", "FACES_LANDMARKS": ""},
    )
    assert done.returncode == 0, done.stderr
    assert '"event": "worker.ready"' in done.stderr, "the worker did not build its stage"
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert lines, "no import log: the worker ran without -X importtime"
    return {line.rsplit("|", 1)[1].strip() for line in lines}


@pytest.mark.parametrize("stage", ["detect", "embed", "sink"])
def test_a_worker_imports_no_other_stages_models(stage, tmp_path, redis_url):
    """The detect, embed and sink workers, started with the default options as `faces run`
    starts them, import neither the age/gender backends (nor DeepFace or h5py through them) nor
    dlib's landmark module: the --agegender and --landmarks option checks every worker runs
    import them only for a value given."""
    modules = imported_modules(stage, redis_url, tmp_path)
    assert sorted(m for m in AGEGENDER_ONLY + LANDMARKS_ONLY if m in modules) == []


def test_the_agegender_worker_still_checks_and_imports_its_backends(tmp_path, redis_url):
    """The age/gender worker imports its backends (it runs them); a bad --agegender is still
    refused by the option check, before the worker starts (exit 2, one line)."""
    assert "faces.models.agegender_backends" in imported_modules("agegender", redis_url, tmp_path)
    refused = faces_cli("worker", "agegender", "--redis-url", redis_url, "--agegender", "nope", "--burst")
    assert refused.returncode == 2
    assert "'nope' is not one of auto, deepface, dlib" in refused.stderr
