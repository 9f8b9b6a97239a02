"""Issue 22 item 14: the ACL user the README and compose.yaml document may send the commands the
pipeline uses, on its own keys, and nothing else; on Redis 6.2 and 7.x. The rule is defined once
(streams/acl.py); README and compose carry it word for word."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
import yaml

from faces.ops import exits
from faces.streams.connection import connect
from tests.images import photo_variants
from tests.pipeline import REPO, faces_cli, result_files

# Every character a URL treats specially: the URL carries it percent-encoded where it must be.
PASSWORD = "Acl9/p@ss#w?rd%Zq"
PASSWORD_PIECES = ("Acl9", "p@ss", "w?rd", "rd%Zq", "Zq")
BOTH = pytest.mark.parametrize("redis_version", ["redis6", "redis7"], indirect=True)


def readme_rule() -> list[str]:
    """The words of the README's `ACL SETUSER faces ...` (Security section)."""
    found = re.search(r"`ACL SETUSER faces ([^`]+)`", (REPO / "README.md").read_text())
    assert found, "README has no `ACL SETUSER faces ...` rule"
    return found.group(1).split()


def compose_rule() -> list[str]:
    """The words of the `user faces ...` line compose.yaml feeds redis-server as config."""
    command = " ".join(yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["redis"]["command"])
    found = re.search(r"\nuser faces ([^\n]+)\n", command)
    assert found, "compose.yaml's redis command sets no `user faces ...`"
    return found.group(1).split()


@pytest.fixture
def acl_url(redis_client, redis_server) -> str:
    """The README's rule set up on the test server with PASSWORD; the URL to log in as it."""
    words = [f">{PASSWORD}" if word == ">secret" else word for word in readme_rule()]
    redis_client.execute_command("ACL", "SETUSER", "faces", *words)
    redis_client.execute_command("ACL", "LOG", "RESET")
    return f"unix://faces:{quote(PASSWORD, safe='')}@{redis_server.socket}"


def refusals(redis_client) -> list[str]:
    """What ACL LOG recorded as refused since the fixture reset it: "reason object" per entry."""
    return [
        f"{entry[b'reason'].decode()} {entry[b'object'].decode()}"
        for entry in map(_as_dict, redis_client.execute_command("ACL", "LOG"))
    ]


def _as_dict(entry) -> dict:
    return entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2]))


def test_readme_and_compose_carry_exactly_the_rule_of_streams_acl():
    """One rule: the README's and compose's words are streams/acl.py's, with the password as each
    place writes it (a placeholder; compose's from the environment)."""
    from faces.streams import acl

    assert readme_rule() == acl.rule_words()
    assert compose_rule() == acl.rule_words(">$$REDISCLI_AUTH")
    assert not {"+@all", "allcommands", "allkeys", "allchannels", "&*", "~*"} & set(acl.rule_words())


@BOTH
@pytest.mark.redis_keys_left("other-app:*")
def test_the_documented_user_may_not_change_the_server_or_other_applications_keys(redis_client, acl_url):
    """As the documented user, every command that reaches beyond the pipeline's own keys is
    refused (on 6.2, FUNCTION does not exist at all): replacing or flushing functions, flushing
    scripts, the whole server or its config, destroying or moving a group, pub/sub, others' keys."""
    redis_client.set("other-app:key", "theirs")
    client = connect(acl_url)
    client.xgroup_create("faces:images", "detect", id="0", mkstream=True)
    library = "#!lua name=otherapp\nredis.register_function('f', function() return 1 end)"
    refused = [
        ("FUNCTION", "LOAD", "REPLACE", library),
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "DELETE", "otherapp"),
        ("SCRIPT", "FLUSH"),
        ("SCRIPT", "KILL"),
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "SET", "maxmemory", "1"),
        ("CONFIG", "GET", "requirepass"),
        ("ACL", "SETUSER", "faces", "+@all"),
        ("SHUTDOWN", "NOSAVE"),
        ("KEYS", "*"),
        ("XGROUP", "DESTROY", "faces:images", "detect"),
        ("XGROUP", "SETID", "faces:images", "detect", "$"),
        ("PUBLISH", "faces:x", "1"),
        ("SET", "other-app:key", "ours"),
        ("GET", "other-app:key"),
        ("CLIENT", "KILL", "TYPE", "normal"),
    ]
    allowed = []
    for command in refused:
        try:
            client.execute_command(*command)
        except redis.exceptions.NoPermissionError:
            continue
        except redis.ResponseError as exc:  # 6.2: FUNCTION is an unknown command
            if command[0] == "FUNCTION" and "unknown command" in str(exc).lower():
                continue
            allowed.append(f"{' '.join(command[:2])}: {exc}")
            continue
        allowed.append(" ".join(command[:2]))
    assert allowed == []
    assert redis_client.get("other-app:key") == b"theirs"
    assert redis_client.xinfo_groups("faces:images")[0]["name"] == b"detect"


@BOTH
def test_faces_run_works_end_to_end_as_the_documented_user_and_nothing_is_refused(tmp_path, redis_client, acl_url):
    """`faces run` on two photos as the documented user, the URL (with a password holding '/',
    '@', '#', '?', '%') passed in FACES_REDIS_URL, never on a command line: both results ok, then
    status, trim, result, dead letters and purge too; ACL LOG records no refused command (not
    even one the client would swallow); no piece of the password in any output or worker log."""
    photos = photo_variants(tmp_path / "photos", 2)
    env = {"FACES_REDIS_URL": acl_url, "DEEPFACE_HOME": str(tmp_path / "no-weights")}
    storage, state = tmp_path / "storage", tmp_path / "state"
    where = ["--storage", str(storage), "--state-dir", str(state)]
    done = faces_cli("run", str(photos[0].parent), "--no-visualize", *where, env=env, timeout=240)
    assert done.returncode == exits.OK, done.stderr
    results = result_files(storage)
    assert len(results) == 2 and {r["status"] for r in results.values()} == {"ok"}
    outputs = [done.stdout + done.stderr]
    for args in (["status"], ["trim"], ["result", next(iter(results))], ["dlq", "list"], ["purge", "--yes"]):
        more = faces_cli(*args, *where, env=env, timeout=60)
        assert more.returncode == exits.OK, f"faces {' '.join(args)}: {more.stderr}"
        outputs.append(more.stdout + more.stderr)
    assert refusals(redis_client) == []
    logs = [path.read_text() for path in sorted(Path(state).rglob("*.log"))]
    assert logs, "no worker log written"
    leaked = [piece for piece in PASSWORD_PIECES for text in outputs + logs if piece in text]
    assert leaked == []
