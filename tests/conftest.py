"""Shared pytest set-up: fixtures live in small plugin modules, one per concern."""

import os

pytest_plugins = [
    "tests.fixtures_redis",
    "tests.fixtures_models",
]

# Every `faces run` / `faces up` a test starts gets one worker per stage, not `--workers auto`
# (two detect workers on 2 cores): `make test` runs two tests at a time on a 2-core machine, and
# the extra processes took make test past 10 minutes on a fresh clone. tests/test_worker_counts.py
# removes this to prove what auto starts; the pipeline behaves the same with any count.
os.environ.setdefault("FACES_WORKERS", "detect=1")
