"""Issue 26 items 6-9 and 11, through the HTTP API of real processes: the listing narrowed by
status (ok, error, dead-lettered) and file name, exact pages; the plain photo the page draws its
one annotation over; /docs from the server's own files; the status's results per minute and
the legend of `faces status`; and `faces browse`, the read-only page over a finished run's
--storage with no Redis.

One real redis-server, one worker per stage and `faces serve` for the module. Four photos go
through it: two with faces, a truncated one (an error result) and one the sink cannot store (a
folder sits where its JSON goes: it is dead-lettered)."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from faces.ops.supervise.pool import WorkerPool
from faces.producer.files import image_id_for
from faces.streams import names
from faces.streams.connection import connect
from tests.api_server import error_of, start_api, start_redis
from tests.images import DATA
from tests.pipeline import faces_cli
from tests.ports import free_port
from tests.waiting import wait_until
from tests.web_browse import browsing


@dataclass
class Run:
    """The module's stack and what went through it: image id -> its answer's status."""

    folder: Path
    redis_url: str
    api: object
    ids: dict[str, str]


def unique(data: bytes, tag: str) -> bytes:
    """`data` with bytes of its own after the end marker: its own sha256, so its own image id."""
    return data + f"web listing {tag} {time.time_ns()}".encode()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("web-listing")
    server = start_redis(folder)
    storage = folder / "storage"
    photos = {
        "astronaut.jpg": unique((DATA / "astronaut.jpg").read_bytes(), "a"),
        "group.jpg": unique((DATA / "group.jpg").read_bytes(), "g"),
        "trunc.jpg": (DATA / "group.jpg").read_bytes()[:3000],  # detect: an error result
        "dead.jpg": unique((DATA / "astronaut.jpg").read_bytes(), "d"),
    }
    dead_id = image_id_for("dead.jpg", hashlib.sha256(photos["dead.jpg"]).hexdigest())
    (storage / f"{dead_id}.json").mkdir(parents=True)  # the sink cannot write there: a dead letter
    pool = WorkerPool(
        server.url,
        folder / "logs",
        grace_s=10,
        extra_args={
            "*": [
                "--block-ms",
                "200",
                "--batch",
                "4",
                "--storage",
                str(storage),
                "--agegender",
                "dlib",
                "--max-deliveries",
                "1",
            ],
            "sink": ["--output", str(folder / "output"), "--metrics-port", str(free_port())],
        },
    )
    pool.start()
    api = start_api(server.url, folder, token=None)
    try:
        wait_until(lambda: not pool.waiting_for(), timeout_s=180, what="every worker to load its models")
        ids = {}
        for name, data in photos.items():
            answer = api.http.post("/v1/images", params={"wait": 60}, files={"file": (name, data)})
            body = answer.json()
            ids[name] = body.get("image_id") or dead_id
            assert answer.status_code in (200, 404), answer.text
        yield Run(folder, server.url, api, ids)
    finally:
        api.stop()
        pool.stop()
        server.stop()


def listed(api, **params) -> tuple[list[dict], str | None]:
    answer = api.http.get("/v1/results", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["items"], body["next_cursor"]


def test_listing_narrowed_by_status_and_file_name(run):
    """GET /v1/results?status= keeps only that status: ok lists the two photos with faces,
    error the truncated one, dead_lettered the one the sink could not store, with its reason;
    ?q= finds an image by its file name (with or without extension, any case); both together
    narrow further; anything else than the three statuses, or an empty q, is a 400."""
    ids = run.ids
    ok, _ = listed(run.api, status="ok")
    assert sorted(i["image_id"] for i in ok) == sorted([ids["astronaut.jpg"], ids["group.jpg"]])
    assert all(i["status"] == "ok" and i["result"]["status"] == "ok" for i in ok)
    errors, _ = listed(run.api, status="error")
    assert [(i["image_id"], i["result"]["error"]["type"]) for i in errors] == [(ids["trunc.jpg"], "truncated")]
    dead, cursor = listed(run.api, status="dead_lettered")
    assert [(i["image_id"], i["status"], i["result"], i["error"]["stage"]) for i in dead] == [
        (ids["dead.jpg"], "dead_lettered", None, "sink")
    ]
    assert dead[0]["error"]["message"] and cursor is None
    for text in ("group.jpg", "GROUP", "rou"):
        found, _ = listed(run.api, q=text)
        assert [i["image_id"] for i in found] == [ids["group.jpg"]], text
    assert listed(run.api, q="group", status="error") == ([], None)
    assert listed(run.api, q="no-such-photo") == ([], None)
    assert "status" in error_of(run.api.http.get("/v1/results", params={"status": "superseded"}), 400)
    assert "q" in error_of(run.api.http.get("/v1/results", params={"q": ""}), 400)


def test_filtered_pages_are_exact(run):
    """A filtered listing a page at a time: each page full until the last, whose next_cursor
    is null, so a client never offers an 'older' page that holds nothing."""
    first, cursor = listed(run.api, status="ok", limit=1)
    assert len(first) == 1 and cursor is not None
    second, cursor = listed(run.api, status="ok", limit=1, cursor=cursor)
    assert len(second) == 1 and cursor is None
    assert {first[0]["image_id"], second[0]["image_id"]} == {run.ids["astronaut.jpg"], run.ids["group.jpg"]}
    everything, cursor = listed(run.api, limit=3)
    assert len(everything) == 3 and cursor is None  # three results announced; the dead letter is not one


def decoded(data: bytes) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None
    return pixels


def test_photo_is_the_picture_without_annotation(run):
    """GET /v1/results/{id}/photo answers the photo as analysed, as JPEG, at the result's size,
    with nothing drawn on it (it matches the photo, where the annotated picture differs); 409
    for an error result."""
    image_id = run.ids["group.jpg"]
    result = run.api.http.get(f"/v1/results/{image_id}").json()
    photo = run.api.http.get(f"/v1/results/{image_id}/photo")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg", photo.text[:200]
    plain = decoded(photo.content).astype(int)
    assert plain.shape[:2] == (result["image"]["height"], result["image"]["width"])
    original = decoded((DATA / "group.jpg").read_bytes()).astype(int)
    annotated = decoded(run.api.http.get(f"/v1/results/{image_id}/picture").content).astype(int)
    assert np.abs(plain - original).mean() < 2.0  # JPEG again: close, not equal
    assert np.abs(annotated - original).mean() > np.abs(plain - original).mean() + 0.5
    assert "error result" in error_of(run.api.http.get(f"/v1/results/{run.ids['trunc.jpg']}/photo"), 409)


class Assets(HTMLParser):
    """Every URL an HTML page loads: script src, link href, img src."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        for key in ("src", "href"):
            if tag in ("script", "link", "img") and found.get(key):
                self.urls.append(found[key])


def test_docs_loads_nothing_from_the_internet(run):
    """/docs names only the server's own files (no CDN: it works offline), each served, and its
    Swagger UI is version 5, which renders the OpenAPI 3.1 document /openapi.json is."""
    page = run.api.http.get("/docs")
    assert page.status_code == 200
    parser = Assets()
    parser.feed(page.text)
    assert len(parser.urls) >= 2, page.text
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        assert run.api.http.get(url).status_code == 200, url
    [script] = [u for u in parser.urls if u.endswith(".js")]
    bundle = run.api.http.get(script).text
    assert run.api.http.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert "isOAS31" in bundle  # Swagger UI 5's check for 3.1 documents; 4 has none and shows an error


def test_status_counts_results_announced_per_minute_and_explains_its_words(run):
    """The status counts the results announced in the last minute (the results stream's row of
    `faces status` said 0 while results flowed), and `faces status` ends with a legend of its
    words."""
    client = connect(run.redis_url)
    try:
        announced = client.xlen(names.RESULTS)
    finally:
        client.close()
    assert announced == 3
    status = run.api.http.get("/v1/status").json()
    assert status["results_per_min"] == announced  # the four photos went through within the minute
    shown = faces_cli("status", "--redis-url", run.redis_url, env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    [row] = [line for line in shown.stdout.splitlines() if line.startswith(names.RESULTS)]
    assert row.split()[1:] == [str(announced), "-", "-", "-", "-", str(announced), "-"], row
    legend = " ".join(shown.stdout.splitlines()[-4:])
    for word in ("pending:", "lag:", "workers:", "per min:", "oldest:"):
        assert word in legend, shown.stdout


def test_browse_serves_a_finished_runs_results_read_only_without_redis(run, tmp_path):
    """`faces browse --storage DIR --output DIR` (no Redis anywhere) serves the page and the
    results the sink wrote there: the same listing (with its filters), each result, its picture
    and plain photo; /v1/status says read_only; an upload is refused (405) saying what to run."""
    with browsing(run.folder / "storage", run.folder / "output", tmp_path / "browse.log") as base:
        status = httpx.get(base + "/v1/status").json()
        assert status == {"read_only": True, "storage": str(run.folder / "storage"), "results": 3}
        items = httpx.get(base + "/v1/results").json()["items"]
        ids = run.ids
        assert sorted(i["image_id"] for i in items) == sorted(
            [ids["astronaut.jpg"], ids["group.jpg"], ids["trunc.jpg"]]
        )
        ok = httpx.get(base + "/v1/results", params={"status": "ok", "q": "GROUP.jpg"}).json()
        assert [i["image_id"] for i in ok["items"]] == [ids["group.jpg"]] and ok["next_cursor"] is None
        first = httpx.get(base + "/v1/results", params={"limit": 2}).json()
        rest = httpx.get(base + "/v1/results", params={"limit": 2, "cursor": first["next_cursor"]}).json()
        assert len(first["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
        assert {i["image_id"] for i in first["items"] + rest["items"]} == {i["image_id"] for i in items}
        group = httpx.get(f"{base}/v1/results/{ids['group.jpg']}").json()
        assert group == run.api.http.get(f"/v1/results/{ids['group.jpg']}").json()
        for kind in ("picture", "photo"):
            answer = httpx.get(f"{base}/v1/results/{ids['group.jpg']}/{kind}")
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg", kind
        assert "no result for image" in error_of(httpx.get(f"{base}/v1/results/{ids['dead.jpg']}"), 404)
        refused = error_of(httpx.post(base + "/v1/images", files={"file": ("x.jpg", b"\xff\xd8")}), 405)
        assert "faces browse" in refused and "faces up --serve" in refused
        assert httpx.get(base + "/").status_code == 200 and httpx.get(base + "/docs").status_code == 200


def test_browse_without_results_says_what_to_do(tmp_path):
    """`faces browse` on a --storage that does not exist: one line saying what to run, exit 1."""
    done = faces_cli("browse", "--storage", str(tmp_path / "nothing"), "--port", str(free_port()))
    assert done.returncode == 1, done.stderr
    assert re.fullmatch(
        r"error: no results to browse: .* run `faces run FOLDER` first, or pass the --storage .*\n", done.stderr
    ), done.stderr
