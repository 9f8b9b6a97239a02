"""Issue 28: what /openapi.json allows is what `faces serve` takes, value by value.

A generated client trusts the document: a request it allows must not be refused, and what the
server refuses must be outside it. Each test sends values on both sides of a documented
constraint (ids, cursors, times, the upload's metadata and fields) to a real `faces serve` in
front of a real Redis (no workers: uploads stay in flight, 202), and checks the document's
verdict (jsonschema, with the date-time format checked) against the server's answer.
tests/web/test_openapi_fuzz.py lets a fuzzer do the same at large."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from tests.api_server import Api, error_of, photo, start_api, start_redis

WAIT_MAX_S = 5


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[Api]:
    folder = tmp_path_factory.mktemp("openapi-document")
    server = start_redis(folder)
    served = start_api(server.url, folder, "--wait-max-s", str(WAIT_MAX_S), token=None)
    try:
        yield served
    finally:
        served.stop()
        server.stop()


@pytest.fixture(scope="module")
def document(api: Api) -> dict:
    return api.http.get("/openapi.json").json()


def allows(schema: dict, value: Any, document: dict | None = None) -> bool:
    """Whether `value` is valid under `schema` (its $refs resolved in `document`), formats checked."""
    root = {**(document or {}), **schema}
    validator = jsonschema.Draft202012Validator(root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return validator.is_valid(value)


def parameter(document: dict, path: str, method: str, name: str) -> dict:
    return next(p["schema"] for p in document["paths"][path][method].get("parameters", []) if p["name"] == name)


def upload_body(document: dict, media_type: str) -> dict:
    return document["paths"]["/v1/images"]["post"]["requestBody"]["content"][media_type]


def test_list_parameters_the_document_allows_are_the_ones_the_server_takes(api, document):
    """GET /v1/results: for cursors and times on both sides of the documented formats (an empty
    cursor, a leading zero, 20 digits, a date without a time, a time before 1970, a day that
    does not exist), the server answers 200 exactly when the document allows the value."""
    cursors = [
        "",
        "0-0",
        "0-1",
        "01-0",
        "1-01",
        "1764279000123-0",
        "1764279000123-7",
        "99999999999999999999-0",
        "x",
        "1764279000123",
    ]
    times = [
        "",
        "2026-11-27T10:00:00Z",
        "2026-11-27T10:00:00.123+05:30",
        "2026-11-27t10:00:00z",
        "1950-01-01T00:00:00Z",
        "1970-01-01T00:30:00+01:00",
        "2023-02-29T00:00:00Z",
        "2026-11-27",
        "2026-11-27 10:00:00Z",
        "2026-11-27T10:00",
        "1764237600",
        "1764237600.5",
        "0",
        "-1",
        "inf",
        "nan",
        "1e30",
        " 1764237600",
        "soon",
    ]
    disagree = []
    for name, values in (("cursor", cursors), ("since", times)):
        schema = parameter(document, "/v1/results", "get", name)
        for value in values:
            status = api.http.get("/v1/results", params={name: value}).status_code
            assert status in (200, 400), (name, value, status)
            if allows(schema, value) != (status == 200):
                disagree.append((name, value, status))
    assert disagree == []


def test_path_ids_the_document_allows_are_the_ones_the_server_reads(api, document):
    """GET /v1/jobs/{job_id} and /v1/results/{image_id}: an id outside the documented pattern
    (or length) is answered "is not a job id / an image id", one inside it is looked up ("no
    job", "no result"): both 404, told apart by the reason."""
    jobs = ["0" * 32, "0123456789abcdef" * 2, "0" * 31, "0" * 33, "A" * 32, "g" * 32]
    images = [
        "x-01234567",
        "фото-0123abcd",
        "a b-01234567",
        "a" * 80 + "-01234567",
        "a" * 81 + "-01234567",
        "x-0123456G",
        "x01234567",
        "-01234567",
        "x-012345678",
    ]
    disagree = []
    for template, values, refused in (
        ("/v1/jobs/{job_id}", jobs, "is not a job id"),
        ("/v1/results/{image_id}", images, "is not an image id"),
    ):
        name = template.rsplit("{", 1)[1].rstrip("}")
        schema = parameter(document, template, "get", name)
        for value in values:
            message = error_of(api.http.get(template.replace("{" + name + "}", value)), 404)
            if allows(schema, value) == (refused in message):
                disagree.append((template, value, message))
    assert disagree == []


def test_upload_fields_the_document_allows_are_the_ones_the_server_takes(api, document):
    """POST /v1/images with a real image: the multipart `metadata` field (a JSON object, as its
    encoding says: a string that is not JSON, a list, a number, bad keys and times) and the
    JSON body's fields (a filename that is not a string, a field the API does not take): 202
    exactly when the document allows the form or the body."""
    form = upload_body(document, "multipart/form-data")
    metadata_schema = form["schema"]["properties"]["metadata"]
    as_json = form.get("encoding", {}).get("metadata", {}).get("contentType") == "application/json"
    disagree = []
    for i, text in enumerate(
        [
            '{"client_ref": "order-7"}',
            "hello",
            "",
            "[1]",
            "7",
            '{"n": 1}',
            '{"bad key": "x"}',
            '{"captured_at": "2026-11-27T10:00:00Z"}',
            '{"captured_at": "yesterday"}',
            "{}",
        ]
    ):
        try:
            value = json.loads(text) if as_json else text
            allowed = allows(metadata_schema, value, document)
        except ValueError:
            allowed = False
        answer = api.http.post("/v1/images", files={"file": ("m.jpg", photo(400 + i))}, data={"metadata": text})
        assert answer.status_code in (202, 400), answer.text
        if allowed != (answer.status_code == 202):
            disagree.append(("metadata", text, answer.status_code))
    body_schema = upload_body(document, "application/json")["schema"]
    image = base64.b64encode(photo(420)).decode()
    for i, body in enumerate(
        [
            {"image_base64": image},
            {"image_base64": image, "filename": "a.jpg"},
            {"image_base64": image, "filename": 5},
            {"image_base64": image, "name": "a.jpg"},
            {"image_base64": image, "metadata": {"client_ref": "x"}},
        ]
    ):
        body = {**body, "image_base64": base64.b64encode(photo(430 + i)).decode()}
        answer = api.http.post("/v1/images", json=body)
        assert answer.status_code in (202, 400), answer.text
        if allows(body_schema, body, document) != (answer.status_code == 202):
            disagree.append(("json", sorted(body), answer.status_code))
    assert disagree == []


def test_the_upload_example_is_a_real_image_and_415_is_documented(api, document):
    """The document's upload example is a real JPEG, accepted as it stands (202); bytes that are
    no image, which a schema cannot rule out, answer the 415 the document states, with its
    JSON error body."""
    example = upload_body(document, "application/json")["example"]
    assert base64.b64decode(example["image_base64"])[:3] == b"\xff\xd8\xff"
    assert api.http.post("/v1/images", json=example).status_code == 202
    post = document["paths"]["/v1/images"]["post"]
    assert post["responses"]["415"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert "415" in post["requestBody"]["description"]
    refused = api.http.post("/v1/images", files={"file": ("x.jpg", b"%PDF-1.4 not an image")})
    assert "not an image" in error_of(refused, 415)
    assert allows(document["components"]["schemas"]["ErrorBody"], refused.json())


def test_every_operation_states_the_errors_it_can_answer(api, document):
    """Every operation documents 500 and 503 (every connection busy), every /v1 one 400 (a Host
    it does not answer to, a malformed request), with the JSON error body; POST documents 403 (a
    foreign Origin) and the upload's own (408, 413, 415, 429); none documents FastAPI's 422
    (validation errors: this server answers 400; a route's own 422, a photo it cannot use, stays),
    nor 401 on this server without a token; the wait parameter's maximum is this server's
    --wait-max-s."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "401" not in operation["responses"], (method, path)
            assert "HTTPValidationError" not in json.dumps(operation["responses"].get("422", {})), (method, path)
            assert {"500", "503"} <= set(operation["responses"]), (method, path)
            if path.startswith("/v1/"):
                assert {"400", "500"} <= set(operation["responses"]), (method, path)
    post = document["paths"]["/v1/images"]["post"]["responses"]
    assert {"200", "202", "403", "408", "413", "415", "429", "503"} <= set(post)
    assert post["202"]["headers"]["Location"]["required"] is True
    assert parameter(document, "/v1/images", "post", "wait")["maximum"] == WAIT_MAX_S
    assert "over this server's maximum" in error_of(
        api.http.post(
            "/v1/images", params={"wait": WAIT_MAX_S + 1}, content=photo(440), headers={"Content-Type": "image/jpeg"}
        ),
        400,
    )
    guarded = api.http.get("/v1/results", headers={"Host": "evil.example"})
    assert "not a name this server answers to" in error_of(guarded, 400)
    assert "may not POST here" in error_of(
        api.http.post(
            "/v1/images", content=photo(441), headers={"Content-Type": "image/jpeg", "Origin": "http://evil.example"}
        ),
        403,
    )
