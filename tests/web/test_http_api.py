"""Issue 13, the HTTP API (`faces serve`, docs/http.md): uploads in three forms, results back,
pictures, status, probes, metrics, and every error status with its JSON message.

One real redis-server and one set of real stage workers for the module; the API runs as a
`faces serve` subprocess with a token. A second API, in front of a Redis without workers, holds
jobs in flight on purpose (202, 429) and then loses its Redis (503)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import cv2
import httpx
import jsonschema
import numpy as np
import pytest
import redis

from faces.ops.supervise.pool import WorkerPool
from faces.schemas.result import load_schema
from faces.streams import names
from faces.streams.connection import connect
from faces.streams.embedded import EmbeddedRedis
from faces.streams.reading import PAYLOAD_FIELD
from tests.api_server import MAX_BYTES, TOKEN, Api, error_of, photo, start_api, start_redis
from tests.pipeline import REPO, faces_process
from tests.ports import free_port
from tests.waiting import wait_until
from tests.worker_pools import stage_pool


@dataclass
class Stack:
    redis: EmbeddedRedis
    client: redis.Redis
    api: Api
    pool: WorkerPool | None


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """Redis, one worker per stage (the bundled age/gender model), and the API with a token."""
    folder = tmp_path_factory.mktemp("http")
    server = start_redis(folder)
    pool = stage_pool(server.url, folder, "--metrics-port", str(free_port()))
    pool.start()
    api = start_api(server.url, folder, "--max-image-bytes", str(MAX_BYTES), "--wait-max-s", "60")
    client = connect(server.url)
    try:
        wait_until(lambda: not pool.waiting_for(), timeout_s=120, what="every worker to load its models")
        yield Stack(server, client, api, pool)
    finally:
        api.stop()
        pool.stop()
        client.close()
        server.stop()


@pytest.fixture(scope="module")
def idle(tmp_path_factory) -> Iterator[Stack]:
    """An API in front of a Redis with no workers: what it publishes stays in flight."""
    folder = tmp_path_factory.mktemp("http-idle")
    server = start_redis(folder)
    api = start_api(server.url, folder, "--high-water", "2", token=None)
    client = connect(server.url)
    try:
        yield Stack(server, client, api, None)
    finally:
        api.stop()
        client.close()
        server.stop()


# -- uploads and results ---------------------------------------------------------------------


def test_multipart_upload_with_wait_answers_the_result_with_its_metadata(stack):
    """A multipart upload with ?wait answers 200 with a valid faces.result/1 document, which
    carries the metadata given as query parameters and as the form's metadata field."""
    data = photo(1)
    answer = stack.api.http.post(
        "/v1/images",
        params={"wait": 60, "client_ref": "order-7", "source": "cam-3", "captured_at": "2026-11-27T10:00:00Z"},
        files={"file": ("astronaut.jpg", data, "image/jpeg")},
        data={"metadata": json.dumps({"shift": "night"})},
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    jsonschema.validate(result, load_schema())
    assert result["status"] == "ok" and len(result["faces"]) == 1
    assert result["metadata"] == {
        "shift": "night",
        "client_ref": "order-7",
        "source": "cam-3",
        "captured_at": "2026-11-27T10:00:00Z",
    }
    assert result["image_id"].startswith("astronaut-")
    kept = Path(result["image"]["path"])
    assert kept.is_relative_to(stack.api.folder / "uploads") and kept.read_bytes() == data
    # The same document from GET.
    assert stack.api.http.get(f"/v1/results/{result['image_id']}").json() == result


def test_raw_body_answers_202_then_the_result_url_gives_it(stack):
    """A raw image body answers 202 (job already in Redis) with its status URL, which answers
    200 with the result once the pipeline is done; the job was published exactly once."""
    answer = stack.api.http.post(
        "/v1/images", params={"filename": "raw.jpg"}, content=photo(2), headers={"Content-Type": "image/jpeg"}
    )
    accepted = answer.json()
    assert answer.status_code == 202, answer.text
    assert accepted["status"] == "pending" and answer.headers["location"] == accepted["status_url"]
    assert accepted["status_url"] == f"/v1/jobs/{accepted['job_id']}"  # the job's own result (issue 22 item 3)
    assert accepted["result_url"] == f"/v1/results/{accepted['image_id']}"
    assert stack.client.sismember(names.INFLIGHT, accepted["job_id"]) or stack.client.exists(
        names.result_key(accepted["image_id"])
    )
    done = wait_until(
        lambda: (r := stack.api.http.get(accepted["status_url"])).status_code == 200 and r,
        timeout_s=60,
        what="the result",
    )
    assert done.json()["job_id"] == accepted["job_id"] and done.json()["image_id"].startswith("raw-")
    jobs = [e for e in stack.client.xrange(names.IMAGES) if accepted["job_id"].encode() in e[1][PAYLOAD_FIELD]]
    assert len(jobs) == 1


def test_a_file_name_in_any_alphabet_gets_a_usable_status_url(stack):
    """The image id keeps the file name's letters; the image's result URL is percent-encoded (a
    500 after publishing, before); it and the Location header (the job's URL) lead to the result."""
    sent = stack.api.http.post(
        "/v1/images", params={"filename": "фото.jpg"}, content=photo(44), headers={"Content-Type": "image/jpeg"}
    )
    assert sent.status_code == 202, sent.text
    body = sent.json()
    assert body["image_id"].startswith("фото-")
    assert sent.headers["location"] == body["status_url"] == f"/v1/jobs/{body['job_id']}"
    assert body["result_url"] == "/v1/results/" + quote(body["image_id"], safe="")
    done = wait_until(
        lambda: (r := stack.api.http.get(body["status_url"])).status_code == 200 and r,
        timeout_s=60,
        what="the result at the status URL",
    )
    assert done.json()["image_id"] == body["image_id"]
    assert stack.api.http.get(body["result_url"]).json() == done.json()


def test_json_base64_upload_with_metadata(stack):
    """JSON with image_base64, a filename and a metadata object: 200 with ?wait, metadata back."""
    body = {
        "image_base64": base64.b64encode(photo(3)).decode(),
        "filename": "b64.jpg",
        "metadata": {"client_ref": "json-1"},
    }
    answer = stack.api.http.post("/v1/images", params={"wait": 60}, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["metadata"] == {"client_ref": "json-1"}
    assert answer.json()["image_id"].startswith("b64-")


def test_results_list_newest_first_with_a_cursor(stack):
    """GET /v1/results pages through the announced results newest first: every image exactly
    once across pages, `since` leaves out what finished before it."""
    before = time.time()
    ids = []
    for i in range(3):
        answer = stack.api.http.post(
            "/v1/images",
            params={"wait": 60, "filename": f"list{i}.jpg"},
            content=photo(10 + i),
            headers={"Content-Type": "image/jpeg"},
        )
        assert answer.status_code == 200
        ids.append(answer.json()["image_id"])
    first = stack.api.http.get("/v1/results", params={"limit": 2, "since": str(before)}).json()
    second = stack.api.http.get(
        "/v1/results", params={"limit": 2, "since": str(before), "cursor": first["next_cursor"]}
    ).json()
    assert [item["image_id"] for item in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    assert all(
        item["status"] == "ok" and item["result"]["image_id"] == item["image_id"]
        for item in first["items"] + second["items"]
    )


def test_picture_is_the_sinks_jpeg_or_drawn_from_the_result(stack):
    """The picture endpoint answers the sink's JPEG, and draws one from the stored result and
    the kept upload when the sink's file is gone."""
    result = stack.api.http.post("/v1/images", params={"wait": 60}, files={"file": ("pic.jpg", photo(20))}).json()
    url = f"/v1/results/{result['image_id']}/picture"
    written = stack.api.folder / "output" / f"{result['image_id']}.jpg"
    sink_picture = stack.api.http.get(url)
    assert sink_picture.status_code == 200 and sink_picture.headers["content-type"] == "image/jpeg"
    assert sink_picture.content == written.read_bytes()
    written.unlink()
    drawn = stack.api.http.get(url)
    assert drawn.status_code == 200 and drawn.headers["content-type"] == "image/jpeg"
    pixels = cv2.imdecode(np.frombuffer(drawn.content, np.uint8), cv2.IMREAD_COLOR)
    assert pixels.shape[:2] == (result["image"]["height"], result["image"]["width"])


def test_status_is_faces_status_json_and_probes_answer(stack):
    """/v1/status has the shape of `faces status --json`; /healthz and /readyz (every stage has
    a live worker) answer 200 without the token."""
    status = stack.api.http.get("/v1/status").json()
    assert {"streams", "dead_letters", "inflight", "workers", "throughput_per_min"} <= set(status)
    assert [s["name"] for s in status["streams"]] == [*names.PIPELINE_STREAMS, names.RESULTS]
    bare = httpx.Client(base_url=stack.api.base)
    assert bare.get("/healthz").json() == {"status": "ok"}
    ready = wait_until(
        lambda: (r := bare.get("/readyz")).status_code == 200 and r,
        timeout_s=30,
        what="/readyz to see every stage's heartbeat",
    )
    assert ready.json() == {"status": "ready", "stages": {s: 1 for s in names.STAGE_ORDER}}


def test_metrics_count_stages_results_and_latency(stack):
    """/metrics is Prometheus text with per-stage gauges and the submission-to-result histogram
    counting this API's finished uploads; a worker's --metrics-port serves its counters."""
    stack.api.http.post("/v1/images", params={"wait": 60}, files={"file": ("m.jpg", photo(30))})
    text = stack.api.http.get("/metrics").text
    for stage in names.STAGE_ORDER:
        assert f'faces_stage_pending{{stage="{stage}"}}' in text and f'faces_stage_lag{{stage="{stage}"}}' in text
    assert "faces_redis_up 1.0" in text and "faces_inflight_images" in text
    # Methods outside HTTP's own are counted as "other": any name would add a series each.
    assert stack.api.http.request("X1", "/nowhere").status_code in (400, 404, 405)
    text = stack.api.http.get("/metrics").text
    assert 'method="X1"' not in text and 'method="other"' in text
    count = float(
        next(line.split()[1] for line in text.splitlines() if line.startswith("faces_result_latency_seconds_count"))
    )
    assert count >= 1
    # A JPEG cut short passes the upload's sniffing and fails to decode at detect: an error
    # result that the detect stage's error gauge counts (from the workers' heartbeats, every 5 s).
    broken = stack.api.http.post("/v1/images", params={"wait": 60}, files={"file": ("cut.jpg", photo(31)[:400])})
    assert broken.json()["status"] == "error" and broken.json()["error"]["stage"] == "detect"
    # Both results are in the workers' next heartbeats (every 5 s), not at once.
    text = wait_until(
        lambda: (
            (t := stack.api.http.get("/metrics").text)
            and metric_value(t, 'faces_stage_errors{stage="detect"}') >= 1
            and metric_value(t, 'faces_stage_processed{stage="sink"}') >= 2
            and t
        ),
        timeout_s=30,
        what="the detect stage's error and the sink's two results in /metrics",
    )
    assert metric_value(text, 'faces_stage_dead_letters{stage="detect"}') == 0
    sink = next(w for w in stack.pool.workers if w.stage == "sink")
    port = sink.command[sink.command.index("--metrics-port") + 1]
    worker_text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    processed = next(line for line in worker_text.splitlines() if line.startswith("faces_worker_processed_total"))
    assert 'stage="sink"' in processed and float(processed.split()[-1]) >= 1


def metric_value(text: str, series: str) -> float:
    """The value of one series (`name{labels}`) in Prometheus text; -1 when absent."""
    return next((float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(series + " ")), -1.0)


def test_openapi_documents_the_result_schema(stack):
    """/docs serves the reference; /openapi.json holds the result schema of schemas/."""
    assert stack.api.http.get("/docs").status_code == 200
    document = stack.api.http.get("/openapi.json").json()
    assert document["components"]["schemas"]["Result"]["properties"]["schema"] == {"const": "faces.result/1"}
    assert "/v1/images" in document["paths"] and "/v1/results/{image_id}/picture" in document["paths"]


# -- errors ----------------------------------------------------------------------------------


def test_without_the_token_every_v1_endpoint_answers_401(stack):
    """With FACES_API_TOKEN set, /v1/* and /metrics need the bearer token; a wrong one is 401 too."""
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        bare = httpx.Client(base_url=stack.api.base, headers=headers)
        for method, path in (
            ("POST", "/v1/images"),
            ("GET", "/v1/results"),
            ("GET", "/v1/status"),
            ("GET", "/metrics"),
            ("GET", "/v1/results/x-01234567"),
        ):
            assert "Authorization: Bearer" in error_of(bare.request(method, path), 401)


def test_malformed_requests_answer_400_naming_the_fix(stack):
    """Bad JSON, bad base64, no file field, bad metadata, a wait over the maximum, a bad cursor
    or since: 400 with a message naming what to send."""
    http = stack.api.http
    post = lambda **kw: http.post("/v1/images", **kw)  # noqa: E731
    assert "not valid JSON" in error_of(post(content=b"{nope", headers={"Content-Type": "application/json"}), 400)
    assert "not valid base64" in error_of(post(json={"image_base64": "***"}), 400)
    assert "image_base64" in error_of(post(json={"image": "x"}), 400)
    assert "no file field `file`" in error_of(post(files={"photo": ("a.jpg", photo(40))}), 400)
    assert "metadata" in error_of(
        post(json={"image_base64": base64.b64encode(photo(41)).decode(), "metadata": {"n": 1}}), 400
    )
    assert "captured_at" in error_of(
        post(params={"captured_at": "yesterday"}, content=photo(42), headers={"Content-Type": "image/jpeg"}), 400
    )
    assert "maximum of 60 s" in error_of(
        post(params={"wait": 61}, content=photo(43), headers={"Content-Type": "image/jpeg"}), 400
    )
    assert "empty" in error_of(post(content=b"", headers={"Content-Type": "image/jpeg"}), 400)
    assert "cursor" in error_of(http.get("/v1/results", params={"cursor": "x"}), 400)
    assert "since" in error_of(http.get("/v1/results", params={"since": "soon"}), 400)
    # Values that parse but no stream id can hold: a 500 (OverflowError, Redis' "Invalid stream
    # ID") before they were checked.
    for since in ("inf", "nan", "-1", "1e30"):
        assert "since" in error_of(http.get("/v1/results", params={"since": since}), 400), since
    # A time before 1970 is a valid RFC 3339 time (the document allows it): every result.
    assert http.get("/v1/results", params={"since": "1950-01-01T00:00:00Z"}).status_code == 200
    for cursor in ("0-0", "99999999999999999999-0"):
        assert "cursor" in error_of(http.get("/v1/results", params={"cursor": cursor}), 400), cursor
    assert "limit" in error_of(http.get("/v1/results", params={"limit": 0}), 400)


def test_what_is_not_an_image_answers_415(stack):
    """Bytes that are not an image are refused whatever the Content-Type says, and so is a
    content type the API does not take; nothing is published."""
    before = stack.client.xlen(names.IMAGES)
    assert "not an image" in error_of(
        stack.api.http.post("/v1/images", content=b"<html>hello</html>", headers={"Content-Type": "image/jpeg"}), 415
    )
    assert "not an image" in error_of(stack.api.http.post("/v1/images", files={"file": ("x.jpg", b"%PDF-1.4")}), 415)
    assert "Content-Type text/plain" in error_of(
        stack.api.http.post("/v1/images", content=photo(50), headers={"Content-Type": "text/plain"}), 415
    )
    assert stack.client.xlen(names.IMAGES) == before


def test_an_upload_over_the_limit_is_refused_while_it_streams(stack):
    """A chunked upload (no Content-Length) over --max-image-bytes gets 413 before the client
    has sent it all: the server stops reading at the limit instead of holding the body."""
    total = 8 * MAX_BYTES
    chunk = b"\xff\xd8\xff" + b"\0" * (64 << 10)
    with socket.create_connection(("127.0.0.1", stack.api.port)) as sock:
        sock.sendall(
            f"POST /v1/images HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        sent, answer = 0, b""
        sock.settimeout(0.01)
        while sent < total:
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer += sock.recv(65536)
                if b"\r\n\r\n" in answer:
                    break
            except (TimeoutError, BlockingIOError):
                pass
        sock.settimeout(10)
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        while len(body) < length:
            body += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < total, "the whole oversized body was sent before the answer came"
    assert "2097152-byte limit" in json.loads(body)["error"]
    # A multipart form is counted the same way, while the form parser reads it.
    boundary = "b0undary"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + b"\xff\xd8\xff"
        + b"\0" * (MAX_BYTES + (200 << 10))
    )
    chunks = (form[i : i + (64 << 10)] for i in range(0, len(form), 64 << 10))
    assert "limit" in error_of(
        stack.api.http.post(
            "/v1/images", content=chunks, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        ),
        413,
    )
    # A declared Content-Length over the limit is refused without reading the body at all.
    assert "limit" in error_of(
        stack.api.http.post(
            "/v1/images", content=b"\xff\xd8\xff" + b"\0" * (MAX_BYTES + 1), headers={"Content-Type": "image/jpeg"}
        ),
        413,
    )


def test_unknown_images_answer_404(stack):
    """An image id never submitted, or something that is no image id: 404 with the reason."""
    assert "not submitted through this API" in error_of(stack.api.http.get("/v1/results/nobody-0123abcd"), 404)
    assert "not an image id" in error_of(stack.api.http.get("/v1/results/no id!"), 404)
    assert "no such endpoint" in error_of(stack.api.http.get("/v2/nothing"), 404)


def test_in_flight_answers_202_and_a_full_pipeline_answers_429(idle):
    """Without workers a job stays in flight: GET answers 202, ?wait answers 202 after waiting,
    the picture 202; /readyz says no stage has a worker (503); at the high-water mark (2 here)
    the next upload is refused with 429 and Retry-After, and nothing more is published."""
    http = idle.api.http
    first = http.post("/v1/images", content=photo(60), headers={"Content-Type": "image/png"}).json()
    waited = http.post("/v1/images", params={"wait": 0.5}, content=photo(61), headers={"Content-Type": "image/jpeg"})
    assert waited.status_code == 202 and waited.json()["status"] == "pending"
    pending = http.get(first["status_url"])
    assert pending.status_code == 202 and pending.json()["job_id"] == first["job_id"]
    assert http.get(first["picture_url"]).status_code == 202
    assert "no live worker of detect, landmarks, agegender, embed, sink" in error_of(http.get("/readyz"), 503)
    assert idle.client.scard(names.INFLIGHT) == 2
    full = http.post("/v1/images", content=photo(62), headers={"Content-Type": "image/jpeg"})
    assert "high-water" in error_of(full, 429) and full.headers["retry-after"]
    assert idle.client.xlen(names.IMAGES) == 2


def test_redis_down_answers_503_and_back_up_serves_again(idle):
    """While Redis is unreachable, endpoints that need it answer 503 with Retry-After (and
    /healthz still 200); once it is back, the same API serves again."""
    http = idle.api.http
    idle.redis.stop()
    try:
        for method, path in (
            ("POST", "/v1/images"),
            ("GET", "/v1/results/a-0123abcd"),
            ("GET", "/v1/status"),
            ("GET", "/readyz"),
            ("GET", "/v1/results"),
        ):
            answer = http.request(method, path, content=photo(70), headers={"Content-Type": "image/jpeg"})
            assert "unreachable" in error_of(answer, 503) and answer.headers["retry-after"]
        assert http.get("/healthz").status_code == 200
        assert "faces_redis_up 0.0" in http.get("/metrics").text
    finally:
        idle.redis.start()
    wait_until(lambda: http.get("/v1/status").status_code == 200, timeout_s=30, what="the API to reach Redis again")


# -- the commands ----------------------------------------------------------------------------


def test_up_serve_runs_the_api_beside_the_stages_and_stops_it(tmp_path):
    """`faces up --serve` starts the API with the stages: an upload gets its result through it;
    SIGTERM stops the API process too."""
    port = free_port()
    log = open(tmp_path / "up.log", "ab")
    up = faces_process(
        *("up", "--serve", "--port", str(port), "--state-dir", str(tmp_path / "state")),
        *("--storage", str(tmp_path / "storage"), "--output", str(tmp_path / "output"), "--agegender", "dlib"),
        cwd=tmp_path,
        stdout=log,
        stderr=log,
        env={"FACES_API_TOKEN": ""},
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    def ready() -> bool:
        assert up.poll() is None, (tmp_path / "up.log").read_text()
        try:
            return http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout_s=120, what="faces up --serve to be ready")
        answer = http.post("/v1/images", params={"wait": 60}, files={"file": ("up.jpg", photo(80))})
        assert answer.status_code == 200 and answer.json()["status"] == "ok"
        assert (tmp_path / "uploads").is_dir()  # relative to where `up` runs
    finally:
        up.terminate()
        assert up.wait(timeout=60) == 0, (tmp_path / "up.log").read_text()
    with pytest.raises(httpx.TransportError):
        http.get("/healthz")
    assert "Traceback" not in (tmp_path / "up.log").read_text()


def test_serve_mistakes_are_one_line_naming_the_fix(tmp_path, redis_url):
    """No pipeline to attach to, a port in use, a token too short: one `error:` line each."""

    def serve(*args: str, token: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "faces", "serve", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "FACES_API_TOKEN": token, "FACES_REDIS_URL": ""},
        )

    nothing = serve("--state-dir", str(tmp_path / "none"))
    assert nothing.returncode == 1 and nothing.stderr.startswith("error: no pipeline is running for state dir")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = serve("--redis-url", redis_url, "--port", str(taken.getsockname()[1]))
    assert busy.returncode == 1 and "pick another --port" in busy.stderr and "Traceback" not in busy.stderr
    short = serve("--redis-url", redis_url, token="abc")
    assert short.returncode == 2 and "FACES_API_TOKEN is 3 characters" in short.stderr
    (tmp_path / "a-file").write_text("")
    unwritable = serve(
        "--redis-url", redis_url, "--port", str(free_port()), "--uploads", str(tmp_path / "a-file" / "up")
    )
    assert unwritable.returncode == 1 and unwritable.stderr.startswith(f"error: cannot keep uploads in {tmp_path}")
    assert "pick a writable folder with --uploads" in unwritable.stderr and "Traceback" not in unwritable.stderr


def test_wait_for_a_job_the_sink_dead_letters_answers_404_saying_why(tmp_path):
    """The sink cannot write its result (its storage folder was replaced by a file after it
    started: a sink refuses to start on such a folder) and dead-letters the job: `?wait` answers
    404 naming the dead letter, as GET does, not 202 "pending" for a job that will never finish."""
    server = start_redis(tmp_path)
    storage = tmp_path / "sink-storage"
    pool = WorkerPool(
        server.url,
        tmp_path / "logs",
        grace_s=10,
        extra_args={
            "*": ["--block-ms", "200", "--batch", "4", "--agegender", "dlib", "--max-deliveries", "1"],
            "sink": ["--storage", str(storage), "--no-visualize"],
        },
    )
    pool.start()
    api = start_api(server.url, tmp_path, token=None)
    try:
        wait_until(lambda: not pool.waiting_for(), timeout_s=120, what="every worker to load its models")
        shutil.rmtree(storage, ignore_errors=True)
        storage.write_text("")  # the sink's writes now fail: FileExistsError, dead-lettered at once
        answer = api.http.post("/v1/images", params={"wait": 60}, files={"file": ("dead.jpg", photo(90))})
        message = error_of(answer, 404)
        assert "ended without one (dead-lettered at the sink)" in message and "faces dlq list" in message
        image_id = message.split()[1]
        assert error_of(api.http.get(f"/v1/results/{image_id}"), 404) == message
    finally:
        api.stop()
        pool.stop()
        server.stop()
