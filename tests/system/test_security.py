"""Who may connect, and what leaks: password + ACL user limited to the pipeline's keys, no
credentials in status, logs or command lines, result names that cannot escape their folders,
size limits."""

from __future__ import annotations

import re
from pathlib import Path

import msgpack
import pytest
import redis
import yaml

from faces.ops.supervise.pool import WorkerPool
from faces.producer.files import image_id_for, job_for
from faces.producer.submit import submit_file
from faces.schemas import events
from faces.streams import names, publishing
from faces.streams.connection import connect, redact
from faces.streams.errors import RedisUnavailable
from tests.images import DATA
from tests.pipeline import REPO, faces_cli, result_files, total_pending
from tests.waiting import wait_until

SECRET = "s3cret-Pa55word"
NO_STAGES = {"detect": 0, "landmarks": 0, "agegender": 0, "embed": 0, "sink": 0}


def documented_acl_rule() -> list[str]:
    """The `ACL SETUSER faces ...` rule of the README's Security paragraph, with our password."""
    found = re.search(r"`ACL SETUSER faces ([^`]+)`", (REPO / "README.md").read_text())
    assert found, "README has no `ACL SETUSER faces ...` example"
    return [f">{SECRET}" if word == ">secret" else word for word in found.group(1).split()]


@pytest.fixture
def acl_url(redis_client, redis_server) -> str:
    """A URL for the user the README documents; the default user gets a password too."""
    redis_client.execute_command("ACL", "SETUSER", "faces", *documented_acl_rule())
    redis_client.config_set("requirepass", "admin-" + SECRET)
    return f"unix://faces:{SECRET}@{redis_server.socket}"


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_acl_user_reaches_only_the_pipeline_keys(acl_url):
    client = connect(acl_url)
    job = job_for("/photos/a.jpg", b"data")
    publishing.publish_image(client, job, b"data")
    assert client.xlen(names.IMAGES) == 1
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.set("other-app:key", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.flushall()


def test_wrong_password_is_refused_without_echoing_it(redis_server, acl_url):
    bad = acl_url.replace(SECRET, "wrong-one")
    with pytest.raises(RedisUnavailable) as info:
        connect(bad)
    assert "wrong-one" not in str(info.value) and "***" in str(info.value)


def test_status_and_errors_never_show_the_password(acl_url):
    done = faces_cli("status", "--redis-url", acl_url)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    refused = faces_cli("status", "--redis-url", acl_url.replace(SECRET, "nope-nope"))
    assert refused.returncode == 1
    assert "nope-nope" not in refused.stdout + refused.stderr


@pytest.mark.parametrize("redis_version", ["redis6", "redis7"], indirect=True)
def test_documented_acl_user_gets_no_channel_and_cannot_destroy_a_group(acl_url):
    assert "&*" not in documented_acl_rule() and "allchannels" not in documented_acl_rule()
    client = connect(acl_url)
    client.xgroup_create(names.IMAGES, "detect", id="0", mkstream=True)
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.xgroup_destroy(names.IMAGES, "detect")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.xgroup_setid(names.IMAGES, "detect", "$")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.publish("faces:anything", "x")
    assert client.xinfo_groups(names.IMAGES)[0]["name"] == b"detect"


@pytest.mark.parametrize("redis_version", ["redis6", "redis7"], indirect=True)
def test_every_stage_works_end_to_end_as_the_documented_acl_user(tmp_path, acl_url, monkeypatch):
    """Each stage's worker process, under the README's rule: reads, hand-overs, scripts, results,
    and, at stop, XGROUP DELCONSUMER (the idle consumers are gone afterwards)."""
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "no-weights"))
    client = connect(acl_url)
    pool = WorkerPool(
        acl_url,
        tmp_path / "logs",
        grace_s=10,
        extra_args={"*": ["--block-ms", "200", "--storage", str(tmp_path / "storage")], "sink": ["--no-visualize"]},
    )
    pool.start()
    try:
        sent = [submit_file(client, path) for path in sorted(DATA.glob("*.jpg"))]
        wait_until(
            lambda: pool.supervise() or len(result_files(tmp_path / "storage")) == len(sent),
            timeout_s=120,
            what="a result for every photo",
        )
        wait_until(lambda: total_pending(client) == 0, what="nothing pending")
    finally:
        pool.stop()
    assert all(w.restarts == 0 for w in pool.workers), "a worker died under the ACL user"
    assert {r["status"] for r in result_files(tmp_path / "storage").values()} == {"ok"}
    for stage in ("detect", "landmarks", "agegender", "embed", "sink"):
        route = names.route(stage)
        assert client.xinfo_consumers(route.input_stream, route.group) == []


def test_pool_workers_get_the_redis_password_through_the_environment_not_argv(tmp_path, acl_url):
    """`ps` and /proc/PID/cmdline are readable by every user; the environment only by us."""
    pool = WorkerPool(
        acl_url,
        tmp_path / "logs",
        grace_s=5,
        counts={**NO_STAGES, "sink": 1},
        extra_args={"sink": ["--no-visualize", "--storage", str(tmp_path / "storage")]},
    )
    worker_log = tmp_path / "logs" / "sink-0.log"

    def ready_count() -> int:  # "worker.ready": connected with the password from its environment
        return worker_log.read_text().count('"worker.ready"') if worker_log.exists() else 0

    pool.start()
    try:
        worker = pool.workers[0]
        wait_until(lambda: ready_count() == 1, timeout_s=60, what="the sink worker connected")
        first_pid = worker.process.pid
        assert SECRET not in cmdline(first_pid)
        assert worker.consumer in cmdline(first_pid)
        worker.process.kill()
        worker.process.wait()
        wait_until(
            lambda: pool.supervise() or ready_count() == 2, timeout_s=60, what="the sink worker restarted and connected"
        )
        # Same consumer name after a restart (it takes back its own pending entries); still no secret.
        assert worker.process.pid != first_pid
        assert worker.consumer in cmdline(worker.process.pid)
        assert SECRET not in cmdline(worker.process.pid)
    finally:
        pool.stop()


def test_pool_consumer_names_are_unique_per_pool_and_stable_per_slot(tmp_path):
    first, second = (WorkerPool("unix:///nowhere.sock", tmp_path / "logs") for _ in range(2))
    assert first.consumer_name("detect", 0) == first.consumer_name("detect", 0)
    assert first.consumer_name("detect", 0) != second.consumer_name("detect", 0)
    assert first.consumer_name("detect", 0).startswith("detect-0-")


def test_compose_redis_requires_the_password_the_workers_use():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    redis_service = compose["services"]["redis"]
    command = " ".join(redis_service["command"])
    assert "requirepass $$REDISCLI_AUTH" in command
    # The workers' user is the README's documented ACL user, with the same password.
    documented = " ".join(">$$REDISCLI_AUTH" if w == f">{SECRET}" else w for w in documented_acl_rule())
    assert f"user faces {documented}" in command
    assert redis_service["environment"]["REDISCLI_AUTH"].startswith("${FACES_REDIS_PASSWORD:?")
    for stage in ("detect", "landmarks", "agegender", "embed", "sink", "watcher"):
        url = compose["services"][stage]["environment"]["FACES_REDIS_URL"]
        assert url.startswith("redis://faces:${FACES_REDIS_PASSWORD:?") and url.endswith("@redis:6379/0")


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://u:pw@host:6379/0", "redis://u:***@host:6379/0"),
        ("rediss://:pw@host:6380", "rediss://:***@host:6380"),
        ("unix://u:pw@/tmp/x.sock", "unix://u:***@/tmp/x.sock"),
        ("redis://host:6379", "redis://host:6379"),
        ("redis://u@host:6379", "redis://u@host:6379"),
        ("redis://host:6379/0?password=pw", "redis://host:6379/0?password=***"),
        ("redis://host?db=1&password=pw&socket_timeout=5", "redis://host?db=1&password=***&socket_timeout=5"),
        ("unix:///tmp/x.sock?password=pw&db=2", "unix:///tmp/x.sock?password=***&db=2"),
        (
            "rediss://u:pw@host:6380/0?password=pw2&ssl_password=pw3",
            "rediss://u:***@host:6380/0?password=***&ssl_password=***",
        ),
        ("redis://u:p%40w@host:notaport/0", "redis://u:***@host:notaport/0"),
        ("redis://u:p?w@host/0", "redis://u:***@host/0"),
    ],
)
def test_redact_hides_passwords_in_every_url_form(url, shown):
    assert redact(url) == shown


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.jpg",
        "/abs/../../x.jpg",
        "..\\..\\win.jpg",
        ".hidden.jpg",
        "a/b/../../../c.jpg",
        "\x00nul.jpg",
        "..jpg",
        "名前 with spaces.jpg",
    ],
)
def test_result_names_cannot_escape_or_hide(name):
    image_id = image_id_for(name, "ab" * 32)
    assert "/" not in image_id and "\\" not in image_id and "\x00" not in image_id
    assert not image_id.startswith(".")
    assert image_id.endswith("-abababab")


def test_oversized_and_deeply_nested_events_are_refused():
    with pytest.raises(events.EventError, match="over the"):
        events.decode(b"\x00" * 2048, max_bytes=1024)
    huge_array = msgpack.packb({"schema": "faces.job", "version": 1, "x": list(range(5000))})
    with pytest.raises(events.EventError):
        events.decode(huge_array, max_bytes=1024)
