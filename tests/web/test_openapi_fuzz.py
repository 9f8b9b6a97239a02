"""Issue 28: the OpenAPI document tells the truth, checked by a fuzzer nobody here wrote.

Schemathesis reads /openapi.json of a real `faces serve` in front of a real Redis and real stage
workers, and sends what the document allows (and, in its negative mode, what it forbids): all
of its checks, the coverage, fuzzing and stateful phases (links from an upload to its job, its
result and their pictures, and from an enrolment to the person), a fixed seed and a bounded
number of cases. Any 5xx, any answer that breaks the document, any allowed request refused or
forbidden request accepted fails it.
Once without a token and once with FACES_API_TOKEN set. Then a stored result is broken on
purpose, and the same run must fail on it.

The fuzzer's images come from tests/openapi_fuzz_hooks.py: a schema cannot say "an image"."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from faces.streams import names
from faces.streams.connection import connect
from tests.api_server import TOKEN, Api, photo, start_api, start_redis
from tests.pipeline import REPO
from tests.waiting import wait_until
from tests.worker_pools import stage_pool

SEED = "28"
CASES_PER_OPERATION = "25"
WAIT_MAX_S = "5"  # the longest ?wait= the fuzzer may ask for: keeps the run short
ST_TIMEOUT_S = 240
# A photo that is an image but not one a person can be enrolled from (no face, several faces and
# no ?face=, or ?face= past its faces) answers 422 on /v1/people and /v1/search: a schema cannot
# say "a photo with this face", so there 422 is an answer to valid data (it is documented, and
# every other check holds it to the document as any status).
PHOTO_CONFIG = """
[[operations]]
include-path-regex = "^/v1/(people|search)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429", "5xx"]

# Operations whose path names a thing the fuzzer cannot make: a stored photo's plain bytes (no
# operation's answer links to an image that has them), and a face that is one of the person's
# (its photos of one-pixel GIFs hold no face). It reaches them and every check holds, but most
# answers are 404/409, which it reports as "missing test data": a note on its inputs, not a lie
# of the document. tests/web/test_http_people.py and test_http_api.py call them with real data.
[[operations]]
include-path-regex = "^/v1/people/[{]person_id[}]/(not|split)$|^/v1/results/[{]image_id[}]/photo$"
warnings = false
"""


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """Redis and one worker per stage (the bundled age/gender model): (Redis URL, a folder)."""
    folder = tmp_path_factory.mktemp("fuzz")
    server = start_redis(folder)
    pool = stage_pool(server.url, folder)
    pool.start()
    try:
        wait_until(lambda: not pool.waiting_for(), timeout_s=120, what="every worker to load its models")
        yield server.url, folder
    finally:
        pool.stop()
        server.stop()


def serve(pipeline: tuple[str, Path], name: str, token: str | None) -> Api:
    redis_url, folder = pipeline
    (folder / name).mkdir(exist_ok=True)
    return start_api(redis_url, folder / name, "--wait-max-s", WAIT_MAX_S, token=token)


def fuzz(api: Api, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """`st run` on the API's own document with every check (`args` may narrow it; a second
    --phases wins); its output and exit code."""
    workdir.mkdir(exist_ok=True)
    (workdir / "schemathesis.toml").write_text(PHOTO_CONFIG)  # st reads it from its working folder
    headers = ["-H", f"Authorization: Bearer {api.token}"] if api.token else []
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.openapi_fuzz_hooks", "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{api.base}/openapi.json",
            "--checks",
            "all",
            "--mode",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--seed",
            SEED,
            "--max-examples",
            CASES_PER_OPERATION,
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
            *headers,
            *args,
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=ST_TIMEOUT_S,
    )


def passed_cases(run: subprocess.CompletedProcess) -> int:
    """The number of generated cases when every one passed; the run's output otherwise."""
    assert run.returncode == 0 and "No issues found" in run.stdout, run.stdout[-12000:] + run.stderr[-3000:]
    found = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert found and found.group(1) == found.group(2), run.stdout[-3000:]
    return int(found.group(1))


def published(api: Api) -> int:
    """Uploads this API accepted (202, or 200 after ?wait), from its own request counter."""
    return answered(api, "POST", "/v1/images", "20")


def answered(api: Api, method: str, route: str, status: str) -> int:
    """Requests this API answered with a status starting with `status`, from its own counter."""
    text = api.http.get("/metrics").text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith(f'faces_http_requests_total{{method="{method}",route="{route}",status="{status}')
    )


def exercised_people(api: Api) -> None:
    """People were enrolled (201), found, renamed or removed through the enrolment's links, and
    photos searched (200): the fuzz reached past the refusals of /v1/people and /v1/search."""
    assert answered(api, "POST", "/v1/people", "201") >= 1
    person = "/v1/people/{person_id}"
    assert sum(answered(api, m, person, "2") for m in ("GET", "PATCH", "DELETE")) >= 1
    assert answered(api, "POST", "/v1/search", "200") >= 1


@pytest.mark.slow
def test_the_fuzzer_finds_no_lie_in_the_document(pipeline, tmp_path):
    """Without a token: every check passes over hundreds of cases, uploads among them accepted
    (so the run exercised the pipeline, not only refusals) and followed through the stateful
    links to their jobs."""
    api = serve(pipeline, "open", token=None)
    try:
        run = fuzz(api, tmp_path / "st")
        assert passed_cases(run) >= 300
        assert "Stateful" in run.stdout and published(api) >= 20
        exercised_people(api)
    finally:
        api.stop()


@pytest.mark.slow
def test_the_fuzzer_finds_no_lie_with_the_token_set(pipeline, tmp_path):
    """With FACES_API_TOKEN: the document declares the bearer scheme on /v1/* and /metrics, the
    fuzzer's ignored_auth check finds each of them refusing a request without it (401), and
    every other check passes as without a token."""
    api = serve(pipeline, "token", token=TOKEN)
    try:
        document = api.http.get("/openapi.json").json()
        assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert document["paths"]["/v1/images"]["post"]["security"] == [{"bearer": []}]
        assert "security" not in document["paths"]["/healthz"]["get"]
        run = fuzz(api, tmp_path / "st")
        assert passed_cases(run) >= 300 and published(api) >= 20
        exercised_people(api)
    finally:
        api.stop()


@pytest.mark.slow
def test_a_result_missing_a_required_field_fails_the_fuzz_run(pipeline, tmp_path):
    """A stored result broken on purpose (its required `faces` removed, in Redis, where the API
    reads it): the same fuzz run fails, naming the schema violation of GET /v1/results."""
    api = serve(pipeline, "broken", token=None)
    client = connect(pipeline[0])
    try:
        answer = api.http.post(
            "/v1/images",
            params={"wait": WAIT_MAX_S},
            json={"image_base64": base64.b64encode(photo(280)).decode(), "filename": "lie.jpg"},
        )
        assert answer.status_code == 200, answer.text
        key = names.result_key(answer.json()["image_id"])
        broken = json.loads(client.get(key))
        del broken["faces"]
        client.set(key, json.dumps(broken), keepttl=True)
        run = fuzz(api, tmp_path / "st", "--include-path", "/v1/results", "--phases", "coverage,fuzzing")
        assert run.returncode != 0, run.stdout[-3000:]
        failure = run.stdout[run.stdout.index("FAILURES") :]
        assert "GET /v1/results" in failure and "Response violates schema" in failure, run.stdout[-6000:]
        assert "Schema at /components/schemas/PageItem/properties/result" in failure, failure
    finally:
        client.close()
        api.stop()
