"""Who may connect, and what leaks: password + ACL user limited to the pipeline's keys, no
credentials in status or logs, result names that cannot escape their folders, size limits."""

from __future__ import annotations

import msgpack
import pytest
import redis

from producer.files import image_id_for, job_for
from schemas import events
from streams import names, publishing
from streams.connection import connect, redact
from streams.errors import RedisUnavailable
from tests.pipeline import faces_cli

SECRET = "s3cret-Pa55word"


@pytest.fixture
def acl_url(redis_client, redis_server) -> str:
    # The pipeline's needs: its own keys, and INFO (a "dangerous" command) for status.
    redis_client.acl_setuser("faces", enabled=True, passwords=[f"+{SECRET}"], keys=["faces:*"],
                             channels=["*"], commands=["+@all", "-@dangerous", "+info"])
    redis_client.config_set("requirepass", "admin-" + SECRET)  # the default user needs one too
    return f"unix://faces:{SECRET}@{redis_server.socket}"


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


def test_redact_hides_passwords_in_every_url_form():
    assert redact("redis://u:pw@host:6379/0") == "redis://u:***@host:6379/0"
    assert redact("rediss://:pw@host:6380") == "rediss://:***@host:6380"
    assert "pw" not in redact("unix://u:pw@/tmp/x.sock")
    assert redact("redis://host:6379") == "redis://host:6379"


@pytest.mark.parametrize("name", ["../../etc/passwd.jpg", "/abs/../../x.jpg", "..\\..\\win.jpg",
                                  ".hidden.jpg", "a/b/../../../c.jpg", "\x00nul.jpg", "..jpg", "名前 with spaces.jpg"])
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
