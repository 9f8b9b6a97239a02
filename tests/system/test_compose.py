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
    for stage in ("detect", "landmarks", "agegender", "embed", "sink"):
        assert services[stage]["command"] == ["worker", stage]
        assert "replicas" in services[stage]["deploy"]
    assert services["watcher"]["command"][0] == "watch"
    one_shot = {"folders"}  # creates the host folders, then exits
    assert all("healthcheck" in s for name, s in services.items() if name not in one_shot)


def test_services_write_as_the_host_user_into_bind_mounted_folders(compose):
    """Issue 14: results readable by the host user, no `docker cp`: ./inbox, ./storage and
    ./output are bind mounts, created by the one-shot `folders` service for FACES_UID."""
    services = compose["services"]
    for name in ("detect", "landmarks", "agegender", "embed", "sink", "watcher"):
        assert services[name]["user"] == "${FACES_UID:-1000}:${FACES_GID:-1000}"
        assert services[name]["depends_on"]["folders"] == {"condition": "service_completed_successfully"}
    assert "./inbox:/data/inbox" in services["watcher"]["volumes"]
    assert {"./storage:/storage", "./output:/output"} <= set(services["sink"]["volumes"])
    assert "chown" in " ".join(services["folders"]["entrypoint"])


def test_the_api_service_serves_on_the_hosts_loopback_with_a_working_command(compose):
    api = compose["services"]["api"]
    assert api["command"][0] == "serve" and "--uploads" in api["command"]
    assert api["ports"] == ["127.0.0.1:${FACES_API_PORT:-8000}:8000"]
    assert "./uploads:/uploads" in api["volumes"]
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    done = faces_cli(*api["command"], "--help")
    assert done.returncode == 0, done.stderr


def test_the_worker_healthcheck_proves_consumption(compose):
    """A heartbeat check (`faces health --local`), not `faces status`, which only proves that
    Redis answers (tests/runtime/test_health.py proves what the command reports)."""
    for name in ("detect", "landmarks", "agegender", "embed", "sink", "watcher"):
        assert compose["services"][name]["healthcheck"]["test"] == ["CMD", "faces", "health", "--local"]


@pytest.mark.parametrize("service", ["detect", "landmarks", "agegender", "embed", "sink", "watcher"])
def test_service_command_is_a_real_faces_command(compose, service):
    service_def = compose["services"][service]
    words = [w for w in service_def["command"] if not w.startswith("/")]
    done = faces_cli(*words, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    health = service_def["healthcheck"]["test"]
    assert health[:2] == ["CMD", "faces"]
    assert faces_cli(*health[2:3], "--help").returncode == 0
