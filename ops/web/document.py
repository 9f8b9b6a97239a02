"""The OpenAPI document of `faces serve`, telling the truth about this server: FastAPI's document
of the routes, plus what FastAPI cannot see. The result schema (schemas/result.schema.json) as
`Result`; the statuses every route shares (a Host not allowed: 400, a missing token: 401, a
foreign Origin on a POST: 403, an internal error: 500, every connection busy: 503) with the
JSON error body; the token as a bearer scheme when this server has one (and no 401 when it has
none); this server's own limits (--wait-max-s, --max-image-bytes); and links from an upload to
its job, its result and their pictures."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from faces.ops.web.config import ServeConfig
from faces.ops.web.guard import CHANGING, PROBES
from faces.schemas.result import load_schema

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
RETRY_AFTER = {"Retry-After": "seconds to wait before asking again"}
# A route's documented answers by status, as FastAPI's `responses=` takes them.
Responses = dict[int | str, dict[str, Any]]
SECURITY = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "FACES_API_TOKEN of the server: `Authorization: Bearer <token>`",
    }
}
# What FastAPI adds that this server never answers: its validation errors are 400 (errors.py).
FASTAPI_ONLY = ("422", "HTTPValidationError", "ValidationError")
UPLOAD = "/v1/images"
JOB, JOB_PICTURE = "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/picture"
RESULT, RESULT_PICTURE = "/v1/results/{image_id}", "/v1/results/{image_id}/picture"


def build(app: FastAPI, config: ServeConfig) -> dict[str, Any]:
    """The document of `app` as served with `config` (cached on the app)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.update(_result_schemas())
        for name in FASTAPI_ONLY:
            schemas.pop(name, None)
        if config.token:
            components["securitySchemes"] = SECURITY
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                _shared_statuses(path, method.upper(), operation, bool(config.token))
                _query_parameters(operation)
        _this_servers_limits(document, config)
        _links(document)
        app.openapi_schema = document
    return app.openapi_schema


def _result_schemas() -> dict[str, Any]:
    """The result schema as `Result`, its $defs as `Result_<name>`."""
    schema = load_schema()
    schema.pop("$schema", None)
    schema.pop("$id", None)
    found = {"Result": schema, **{f"Result_{k}": v for k, v in schema.pop("$defs", {}).items()}}
    return json.loads(json.dumps(found).replace('"#/$defs/', '"#/components/schemas/Result_'))


def error(description: str, **headers: str) -> dict[str, Any]:
    """A documented error status: the JSON error body, and headers it always carries."""
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}
    if headers:
        answer["headers"] = {
            name: {"required": True, "schema": {"type": "string"}, "description": meaning}
            for name, meaning in headers.items()
        }
    return answer


def _shared_statuses(path: str, method: str, operation: dict, secured: bool) -> None:
    responses = operation["responses"]
    if "HTTPValidationError" in json.dumps(responses.get("422", {})):
        del responses["422"]  # FastAPI's, never answered (errors.py: 400); a route's own 422 stays
    if not secured:
        responses.pop("401", None)  # no token: nothing is refused for the want of one
    shared = {
        "500": error("internal error (the server log has the details)"),
        # ops/web/transport.py: --max-connections open, each with a request in progress
        "503": error("every connection busy (--max-connections)", **RETRY_AFTER),
    }
    if path not in PROBES:
        shared["400"] = error("malformed request, or a Host name this server does not answer to")
        if secured:
            shared["401"] = error("missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
            operation["security"] = [{"bearer": []}]
    if method in CHANGING:
        shared["403"] = error("sent from a web page of another origin (cross-site requests are refused)")
    for status, answer in shared.items():
        responses.setdefault(status, answer)


def _query_parameters(operation: dict) -> None:
    """An optional query parameter is left out, never null: drop the null branch FastAPI writes
    for Optional[...] parameters."""
    for parameter in operation.get("parameters", []):
        schema = parameter["schema"]
        branches = schema.get("anyOf")
        if parameter["in"] == "query" and branches and {"type": "null"} in branches:
            kept = [b for b in branches if b != {"type": "null"}]
            del schema["anyOf"]
            schema.update(kept[0] if len(kept) == 1 else {"anyOf": kept})


def _this_servers_limits(document: dict, config: ServeConfig) -> None:
    upload = document["paths"][UPLOAD]["post"]
    for parameter in upload.get("parameters", []):
        if parameter["name"] == "wait":
            parameter["schema"]["maximum"] = config.wait_max_s
    upload["requestBody"]["description"] = (
        f"The image: at most {config.max_image_bytes} bytes (this server's --max-image-bytes; larger: 413), "
        "of a format the pipeline reads (JPEG, PNG, GIF, BMP, WebP, TIFF, JPEG 2000, AVIF, PNM, ...; anything "
        "else: 415, whatever the Content-Type says)."
    )
    upload["requestBody"]["x-max-image-bytes"] = config.max_image_bytes


def _links(document: dict) -> None:
    """From an upload's answer (202 or 200) to its job, its image's result and their pictures."""

    def link(path: str, parameter: str, pointer: str) -> dict:
        return {
            "operationRef": "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/get",
            "parameters": {parameter: f"$response.body#/{pointer}"},
        }

    links = {
        "Job": link(JOB, "job_id", "job_id"),
        "JobPicture": link(JOB_PICTURE, "job_id", "job_id"),
        "Result": link(RESULT, "image_id", "image_id"),
        "ResultPicture": link(RESULT_PICTURE, "image_id", "image_id"),
    }
    for status in ("200", "202"):
        document["paths"][UPLOAD]["post"]["responses"][status]["links"] = links
