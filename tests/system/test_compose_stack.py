"""Issue 14, `make compose-test`: the compose stack started, fed, scaled, broken and stopped for
real, on a real Docker engine (not part of `make test`: a few minutes, and it needs root for
the engine). It checks, counting exactly:

1. a clean stack comes up healthy with no manual step (the host folders are created for the
   services' user; the healthchecks read heartbeats);
2. the 12 photos of ../shared/testdata/dlib-faces dropped in ./inbox get 12 results in ./storage,
   readable by the host user;
3. with detect and agegender scaled to 2, 12 more photos (new names, new bytes) get their results
   although a detect or agegender container is killed with SIGKILL while it holds entries;
4. Redis restarted while 12 more are in flight: nothing acknowledged is lost (the earlier
   announcements and results are all still there) and every photo gets exactly one result;
5. the api service answers /readyz and an upload with ?wait with its result;
6. `down -v` stops everything.
Times go to stdout and bench-results/compose-test.json.

The stack is the project's compose.yaml in a scratch folder (its ./inbox, ./storage, ./output
live there) without the top-level `name:`, which docker-compose 1.29 rejects (-p names the
project instead); the image is built from the checkout first and compose runs with --no-build.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.pipeline import REPO
from tests.ports import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

PHOTOS = REPO.parent / "shared" / "testdata" / "dlib-faces"
SETUP = REPO.parent / "shared" / "container" / "setup"
IMAGE = "faces-pipeline:latest"
STAGES = ("detect", "landmarks", "agegender", "embed", "sink", "watcher")  # the services with a worker
# Taking over a killed worker's entries waits this long (FACES_CLAIM_IDLE_MS; 60 s by default).
CLAIM_IDLE_MS = "15000"
# Read inside the sink container: every announcement of the results stream (stream id, job,
# image, status), for exactly-once counting.
ANNOUNCEMENTS = """
import json, os, redis
client = redis.Redis.from_url(os.environ["FACES_REDIS_URL"])
rows = client.xrange("faces:results")
print(json.dumps([[i.decode(), f[b"job_id"].decode(), f[b"image_id"].decode(), f[b"status"].decode()]
                  for i, f in rows]))
"""


def run(*args: str, env: dict | None = None, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def engine_answers() -> bool:
    return shutil.which("docker") is not None and run("docker", "info", check=False, timeout=60).returncode == 0


class Stack:
    """docker-compose on a copy of compose.yaml in `folder`, as project `project`."""

    def __init__(self, folder: Path, project: str, uid: int):
        self.folder = folder
        self.project = project
        self.uid = uid
        self.env = {
            **os.environ,
            "FACES_REDIS_PASSWORD": secrets.token_hex(16),
            "FACES_UID": str(uid),
            "FACES_GID": str(uid),
            "FACES_API_PORT": str(free_port()),
        }
        text = (REPO / "compose.yaml").read_text()
        (folder / "compose.yaml").write_text(
            "".join(line for line in text.splitlines(keepends=True) if not line.startswith("name:"))
        )
        # An override file, as an operator would write one: a shorter takeover of a killed
        # worker's entries, so that the test does not wait a minute for it.
        (folder / "override.yaml").write_text(
            "services:\n"
            + "".join(
                f'  {stage}:\n    environment:\n      FACES_CLAIM_IDLE_MS: "{CLAIM_IDLE_MS}"\n'
                for stage in STAGES
                if stage != "watcher"
            )
        )

    def dc(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        return run(
            "docker-compose",
            "-p",
            self.project,
            "--project-directory",
            str(self.folder),
            "-f",
            str(self.folder / "compose.yaml"),
            "-f",
            str(self.folder / "override.yaml"),
            *args,
            env=self.env,
            timeout=timeout,
            check=check,
        )

    def containers(self, service: str) -> list[str]:
        return self.dc("ps", "-q", service).stdout.split()

    def health(self, container: str) -> str:
        return run("docker", "inspect", "-f", "{{.State.Health.Status}}", container).stdout.strip()

    def all_healthy(self, replicas: dict[str, int]) -> bool:
        for service in (*STAGES, "api"):
            ids = self.containers(service)
            if len(ids) != replicas.get(service, 1) or any(self.health(c) != "healthy" for c in ids):
                return False
        return True

    def worker_holding_entries(self, services: tuple[str, ...]) -> tuple[str, int] | None:
        """(container id, pending count) of a worker of `services` with entries in hand now. A
        consumer's name carries its host name, which is the container's short id."""
        done = self.dc("exec", "-T", "sink", "faces", "status", "--json", check=False, timeout=60)
        if done.returncode != 0:
            return None
        containers = {c[:12]: c for service in services for c in self.containers(service)}
        for stream in json.loads(done.stdout)["streams"]:
            for group in stream["groups"]:
                for consumer in group["consumer_details"]:
                    host = consumer["name"].split("-")[1] if consumer["name"].count("-") >= 2 else ""
                    if consumer["pending"] > 0 and host in containers:
                        return containers[host], consumer["pending"]
        return None

    def announcements(self) -> list[list[str]]:
        done = self.dc("exec", "-T", "sink", "python", "-c", ANNOUNCEMENTS, check=False, timeout=60)
        return json.loads(done.stdout) if done.returncode == 0 else []

    def results(self) -> dict[str, dict]:
        out = {}
        for path in (self.folder / "storage").glob("*.json"):
            try:
                out[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                pass  # being written (the sink writes atomically, but be safe)
        return out


def drop(inbox: Path, names: list[tuple[Path, str]], marker: bytes) -> None:
    """Copy photos into the inbox under new names, each ending with `marker` after the JPEG's
    end (new bytes for the drop folder's dedupe, the same picture for the decoder); written
    under a hidden name and renamed, as a careful user would."""
    for source, name in names:
        part = inbox / f".{name}.part"
        part.write_bytes(source.read_bytes() + marker)
        part.chmod(0o644)
        part.rename(inbox / name)


@pytest.fixture(scope="module")
def engine() -> None:
    if not engine_answers():
        if os.geteuid() != 0 or not SETUP.is_file():
            pytest.fail(f"no Docker engine answers; run {SETUP} as root first")
        started = time.monotonic()
        run(str(SETUP), timeout=1200)
        print(f"no engine answered: started one with {SETUP} in {time.monotonic() - started:.1f} s", flush=True)
    assert engine_answers()


@pytest.mark.timeout(3600)
def test_the_compose_stack_analyses_scales_survives_kills_and_restarts(engine, tmp_path):
    photos = sorted(PHOTOS.glob("*.jpg"))
    assert len(photos) == 12, f"expected the 12 photos of {PHOTOS}"
    times: dict[str, float] = {}

    def timed(name: str, action):
        started = time.monotonic()
        value = action()
        times[name] = round(time.monotonic() - started, 1)
        print(f"{name}: {times[name]} s", flush=True)
        return value

    timed("build_s", lambda: run("docker", "build", "-q", "-t", IMAGE, str(REPO), timeout=1800))
    uid = os.getuid() or 1000  # as root, the services' default user; else the caller's own
    stack = Stack(tmp_path, f"facestest{os.getpid()}", uid)
    try:
        timed(
            "up_to_healthy_s",
            lambda: (
                stack.dc("up", "-d", "--no-build"),
                wait_until(lambda: stack.all_healthy({}), timeout_s=600, interval_s=2, what="every service healthy"),
            ),
        )
        inbox = tmp_path / "inbox"
        assert inbox.is_dir() and inbox.stat().st_uid == uid, "the folders service did not create ./inbox"

        first = [(p, f"a-{p.name}") for p in photos]
        drop(inbox, first, b"")
        results = timed(
            "first_12_results_s",
            lambda: wait_until(
                lambda: (r := stack.results()) and len(r) == 12 and r,
                timeout_s=600,
                interval_s=1,
                what="12 results in ./storage",
            ),
        )
        assert sorted(r["image"]["path"] for r in results.values()) == sorted(f"/data/inbox/{n}" for _, n in first)
        assert all(r["status"] == "ok" for r in results.values()), [r.get("error") for r in results.values()]
        for path in (tmp_path / "storage").glob("*.json"):
            info = path.stat()
            assert info.st_uid == uid and info.st_mode & 0o077 == 0, f"{path}: {oct(info.st_mode)}"  # owner-only

        timed(
            "scale_to_healthy_s",
            lambda: (
                stack.dc("up", "-d", "--no-build", "--no-recreate", "--scale", "detect=2", "--scale", "agegender=2"),
                wait_until(
                    lambda: stack.all_healthy({"detect": 2, "agegender": 2}),
                    timeout_s=600,
                    interval_s=2,
                    what="2 detect and 2 agegender healthy",
                ),
            ),
        )
        second = [(p, f"b-{p.name}") for p in photos]
        drop(inbox, second, b"second")
        victim, held = wait_until(
            lambda: stack.worker_holding_entries(("detect", "agegender")),
            timeout_s=300,
            interval_s=0.2,
            what="a scaled worker holding entries",
        )
        run("docker", "kill", "-s", "KILL", victim)
        print(
            f"killed container {victim[:12]} with SIGKILL while it held {held} entries; "
            f"{len(stack.results()) - 12} of the second 12 had results",
            flush=True,
        )
        timed(
            "second_12_results_after_kill_s",
            lambda: wait_until(lambda: len(stack.results()) == 24, timeout_s=600, interval_s=1, what="24 results"),
        )

        before_restart = stack.announcements()
        assert len(before_restart) == 24
        third = [(p, f"c-{p.name}") for p in photos]
        drop(inbox, third, b"third")
        wait_until(lambda: len(stack.results()) > 24, timeout_s=300, interval_s=0.5, what="a result of the third 12")
        timed("redis_restart_s", lambda: stack.dc("restart", "redis"))
        timed(
            "third_12_results_after_restart_s",
            lambda: wait_until(lambda: len(stack.results()) == 36, timeout_s=600, interval_s=1, what="36 results"),
        )

        announced = wait_until(
            lambda: (a := stack.announcements()) and len(a) >= 36 and a, timeout_s=120, what="36 announcements"
        )
        assert announced[:24] == before_restart, "an announcement made before Redis restarted is gone"
        image_ids = [image for _, _, image, _ in announced]
        assert sorted(image_ids) == sorted(stack.results()), "not exactly one announcement per image"
        results = stack.results()
        names = sorted(r["image"]["path"].rsplit("/", 1)[1] for r in results.values())
        assert names == sorted(n for _, n in first + second + third)
        assert [r["status"] for r in results.values()] == ["ok"] * 36
        dead = json.loads(stack.dc("exec", "-T", "sink", "faces", "status", "--json").stdout)["dead_letters"]
        assert dead == 0

        # The api service: ready (every stage has a consuming worker), and an upload answered
        # with its result.
        api = f"http://127.0.0.1:{stack.env['FACES_API_PORT']}"
        assert httpx.get(f"{api}/readyz", timeout=30).status_code == 200
        uploaded = timed(
            "api_upload_with_wait_s",
            lambda: httpx.post(
                f"{api}/v1/images?wait=60", files={"file": ("upload.jpg", photos[0].read_bytes() + b"api")}, timeout=90
            ),
        )
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["status"] == "ok" and uploaded.json()["faces"]
        assert len(stack.results()) == 37 and (tmp_path / "uploads").is_dir()
    finally:
        timed("down_s", lambda: stack.dc("down", "-v", "--remove-orphans", check=False, timeout=300))
    summary = {
        "photos": 36,
        "results": 36,
        "api_uploads": 1,
        "killed": "a detect or agegender container holding entries (SIGKILL)",
        **times,
    }
    out = REPO / "bench-results" / "compose-test.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print("compose-test summary: " + json.dumps(summary), flush=True)
