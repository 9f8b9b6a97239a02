"""The compose deployment, as far as it can be checked without a Docker engine: the file is
valid compose, and every service runs a real `faces` command whose --help works."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from tests.pipeline import REPO, faces_cli

SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def test_compose_file_validates_against_the_compose_spec(compose):
    if not SCHEMA.is_file():
        pytest.skip(f"compose-spec schema not found at {SCHEMA} (the ../shared folder beside the repo)")
    # The spec names its draft as ".../draft-07/schema" (no "#"), which jsonschema does not
    # recognise, so the validator is chosen here rather than guessed.
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(compose)


def test_redis_service_keeps_an_aof_and_never_evicts(compose):
    command = " ".join(compose["services"]["redis"]["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert "--maxmemory-policy noeviction" in command


def test_every_stage_and_the_watcher_is_a_service_with_a_healthcheck(compose):
    services = compose["services"]
    for stage in ("detect", "landmarks", "agegender", "sink"):
        assert services[stage]["command"] == ["worker", stage]
        assert "replicas" in services[stage]["deploy"]
    assert services["watcher"]["command"][0] == "watch"
    assert all("healthcheck" in s for s in services.values())


@pytest.mark.parametrize("service", ["detect", "landmarks", "agegender", "sink", "watcher"])
def test_service_command_is_a_real_faces_command(compose, service):
    service_def = compose["services"][service]
    words = [w for w in service_def["command"] if not w.startswith("/")]
    done = faces_cli(*words, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    health = service_def["healthcheck"]["test"]
    assert health[:2] == ["CMD", "faces"]
    assert faces_cli(*health[2:3], "--help").returncode == 0
