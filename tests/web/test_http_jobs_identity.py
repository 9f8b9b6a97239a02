"""Issue 22 item 3: two clients upload the same photo (same bytes, same name: one image id), each
with its own client_ref. Each must get its own job's result and metadata, never the other's:
from `?wait`, and from GET /v1/jobs/<job id>; GET /v1/results/<image id> answers the image's
latest result, whichever job it came from, saying which (docs/http.md).

Real parts: a redis-server, real workers, a real `faces serve`. The sink starts only once both
jobs wait for it, and A's entry is held by a stalled sink consumer until B has finished: A's
result (older than B's) does not replace the image's, and A's `?wait` was then answered with
B's result and B's client_ref."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import httpx

from faces.ops.supervise.pool import WorkerPool
from faces.streams import names
from faces.streams.connection import connect
from faces.streams.groups import ensure_group
from faces.streams.reading import PAYLOAD_FIELD
from tests.api_server import photo, start_api
from tests.pipeline import faces_process
from tests.waiting import wait_until

CLAIM_IDLE_MS = 600_000  # the sink claims the stalled entry only once the test makes it that idle


def start_sink(redis_url: str, folder: Path) -> subprocess.Popen:
    log = open(folder / "sink.log", "wb")
    return faces_process(
        *("worker", "sink", "--redis-url", redis_url, "--storage", str(folder / "storage")),
        *("--output", str(folder / "output"), "--block-ms", "200", "--batch", "4"),
        *("--claim-idle-ms", str(CLAIM_IDLE_MS)),
        stdout=log,
        stderr=log,
    )


def test_each_client_gets_its_own_job_of_a_shared_image(tmp_path, redis_url):
    """Client A uploads with ?wait, then client B the same bytes under the same name without:
    one image id, two jobs. While no sink runs, GET /v1/jobs/<B> answers 202 (pending, with the
    image id) and an unknown or malformed job id 404. Once a sink has finished B, then A (claimed
    from a stalled consumer):
    A's ?wait answers A's job id and A's client_ref; GET /v1/jobs/<each> answers that job's own
    result and metadata, and its picture; GET /v1/results/<image id> answers the latest job's
    (B's, submitted last), which says it is B's."""
    pool = WorkerPool(
        redis_url,
        tmp_path / "logs",
        grace_s=10,
        counts={"detect": 1, "landmarks": 1, "agegender": 1, "embed": 1, "sink": 0},
        extra_args={
            "*": ["--block-ms", "200", "--batch", "4", "--storage", str(tmp_path / "storage"), "--agegender", "dlib"]
        },
    )
    pool.start()
    api = start_api(redis_url, tmp_path, "--wait-max-s", "120")
    client = connect(redis_url)
    sink = None
    try:
        wait_until(lambda: not pool.waiting_for(), timeout_s=120, what="the workers to load their models")
        data = photo(1)
        answers: dict[str, httpx.Response] = {}
        client_a = httpx.Client(base_url=api.base, headers=api.http.headers, timeout=180)

        def upload_a() -> None:
            answers["A"] = client_a.post(
                "/v1/images",
                params={"filename": "shared.jpg", "client_ref": "A", "wait": 120},
                content=data,
                headers={"Content-Type": "image/jpeg"},
            )

        waiting = threading.Thread(target=upload_a)
        waiting.start()
        # A's job waits for the sink before B's is published: in the sink's stream, A comes first.
        wait_until(lambda: client.xlen(names.SINK_INPUT) == 1, timeout_s=120, what="A's job to wait for the sink")
        b = api.http.post(
            "/v1/images",
            params={"filename": "shared.jpg", "client_ref": "B"},
            content=data,
            headers={"Content-Type": "image/jpeg"},
        )
        assert b.status_code == 202, b.text
        job_b, image_id = b.json()["job_id"], b.json()["image_id"]
        (job_a,) = {j.decode() for j in client.smembers(names.INFLIGHT)} - {job_b}
        pending = api.http.get(f"/v1/jobs/{job_b}")  # checked below, after the point of the test

        wait_until(lambda: client.xlen(names.SINK_INPUT) == 2, timeout_s=120, what="both jobs to wait for the sink")
        ensure_group(client, names.SINK_INPUT, "sink")
        ((_stream, ((_entry, held),)),) = client.xreadgroup("sink", "stalled", {names.SINK_INPUT: ">"}, count=1)
        assert job_a.encode() in held[PAYLOAD_FIELD]
        sink = start_sink(redis_url, tmp_path)
        wait_until(lambda: not client.sismember(names.INFLIGHT, job_b), timeout_s=120, what="B's job to finish")
        client.xclaim(names.SINK_INPUT, "sink", "stalled", 0, [_entry], idle=10 * CLAIM_IDLE_MS)  # now A's turn
        waiting.join(timeout=150)
        client_a.close()
        a = answers["A"]
        assert a.status_code == 200, a.text
        assert (a.json()["image_id"], a.json()["job_id"], a.json()["metadata"]) == (
            image_id,
            job_a,
            {"client_ref": "A"},
        )

        assert b.headers["location"] == b.json()["status_url"] == f"/v1/jobs/{job_b}"
        assert b.json()["result_url"] == f"/v1/results/{image_id}"
        assert pending.status_code == 202, pending.text
        assert (pending.json()["job_id"], pending.json()["image_id"], pending.json()["status"]) == (
            job_b,
            image_id,
            "pending",
        )
        assert api.http.get(f"/v1/jobs/{'0' * 32}").status_code == 404
        assert api.http.get("/v1/jobs/not-a-job").status_code == 404

        for job_id, ref in ((job_a, "A"), (job_b, "B")):
            own = api.http.get(f"/v1/jobs/{job_id}")
            assert own.status_code == 200, own.text
            assert (own.json()["job_id"], own.json()["metadata"], own.json()["status"]) == (
                job_id,
                {"client_ref": ref},
                "ok",
            )
            picture = api.http.get(f"/v1/jobs/{job_id}/picture")
            assert picture.status_code == 200 and picture.content[:3] == b"\xff\xd8\xff"
        latest = api.http.get(f"/v1/results/{image_id}")
        assert latest.status_code == 200
        assert (latest.json()["job_id"], latest.json()["metadata"]) == (job_b, {"client_ref": "B"})
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=30)
        api.stop()
        pool.stop()
        client.close()
