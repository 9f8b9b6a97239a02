"""The GET endpoints of results: one job's own result, one image's latest result, the latest
results newest first, the annotated pictures; and the documents they answer (documented in
/docs and docs/http.md).

Several jobs may share an image (the same bytes under the same name, from one client or
many): /v1/jobs/<job id> answers that job's own result and metadata, whatever the others;
/v1/results/<image id> answers the image's latest result, whichever job it came from."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from faces.ops.web import params
from faces.ops.web.document import RETRY_AFTER, Responses, error
from faces.ops.web.errors import ApiError
from faces.ops.web.listing import ListQuery, iso_ms, list_query, page_json
from faces.ops.web.models import RESULT_REF, Accepted, ErrorBody, Page, Pending  # noqa: F401 (ErrorBody: export.py)
from faces.ops.web.picture import NoPicture, annotated_jpeg, plain_jpeg
from faces.ops.web.state import Api, api, checked_image_id, require_token
from faces.streams import recent, results, uploads

router = APIRouter(dependencies=[Depends(require_token)])

RESULT_RESPONSE: dict[str, Any] = {
    "description": "The result document, faces.result/1",
    "content": {"application/json": {"schema": RESULT_REF}},
}
# Every error status a route may answer (document.py adds those every route shares).
ERRORS: Responses = {
    status: error(meaning, **headers)
    for status, meaning, headers in (
        (400, "malformed request", {}),
        (401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}),
        (404, "unknown image or job, or one that ended without a result", {}),
        (408, "the upload body did not arrive in time (--body-timeout-s, --body-idle-s)", {}),
        (409, "an error result: nothing to draw", {}),
        (413, "over this server's --max-image-bytes", {}),
        (415, "not an image the pipeline reads, or a Content-Type the API does not take", {}),
        (429, "the pipeline is at its high-water mark (--high-water)", RETRY_AFTER),
        (503, "Redis unreachable, or --uploads-reading uploads being read already", RETRY_AFTER),
    )
}
PENDING: dict[str, Any] = {
    "model": Pending,
    "description": "still in the pipeline",
    "headers": {
        "Retry-After": {"required": True, "schema": {"type": "string"}, "description": RETRY_AFTER["Retry-After"]}
    },
}
READ_RESPONSES: Responses = {200: RESULT_RESPONSE, 202: PENDING, 404: ERRORS[404], 503: ERRORS[503]}


def status_url(image_id: str) -> str:
    """The image's result URL path; percent-encoded, since an image id keeps the letters of its
    file name (`фото-0123abcd`) and a Location header carries only latin-1."""
    return f"/v1/results/{quote(image_id, safe='')}"


def job_url(job_id: str) -> str:
    """The URL path of one job's own result."""
    return f"/v1/jobs/{job_id}"


def accepted(image_id: str, job_id: str, metadata: dict[str, str]) -> Accepted:
    """POST's answer for a job just published and not finished yet."""
    return Accepted(
        image_id=image_id,
        job_id=job_id,
        status="pending",
        status_url=job_url(job_id),
        picture_url=job_url(job_id) + "/picture",
        result_url=status_url(image_id),
        submitted_at=iso_ms(time.time() * 1000),
        metadata=metadata,
    )


def note_published(state: Api, job_id: str, image_id: str) -> None:
    """Remember `job_id` as a job of `image_id` (for GET /v1/jobs/<job id>), as long as results."""
    uploads.note_job(state.client, job_id, image_id, state.config.result_ttl_s)


def own_result(state: Api, job_id: str) -> str | None:
    """The result document of `job_id` itself (None: not finished, or not a job of this API)."""
    return uploads.job_state(state.client, job_id).result


def job_result_or_pending(state: Api, job_id: str) -> str | Response:
    """The job's own result (JSON text), or a 202 response while it is in flight; ApiError 404
    when it is unknown or ended without a result."""
    if not params.is_job_id(job_id):
        raise ApiError(404, f"{job_id!r} is not a job id (32 hex digits, as POST /v1/images answered): check the id")
    job = uploads.job_state(state.client, job_id)
    if job.result is not None:
        return job.result
    if job.image_id is None:
        raise ApiError(
            404,
            f"no job {job_id}: it was not submitted through this API, or its result expired "
            "(--result-ttl-s); submit the image again",
        )
    if job.in_flight:
        return _pending(job.image_id, job_id, job_url(job_id))
    raise dead_lettered(job.image_id, job_id)


def _pending(image_id: str, job_id: str, url: str) -> JSONResponse:
    pending = Pending(image_id=image_id, job_id=job_id, status="pending", status_url=url, picture_url=url + "/picture")
    return JSONResponse(pending.model_dump(), status_code=202, headers={"Retry-After": "1"})


def dead_lettered(image_id: str, job_id: str) -> ApiError:
    return ApiError(
        404,
        f"image {image_id} has no result: its job {job_id} ended without one (dead-lettered "
        "at the sink); `faces dlq list` says why; submit it again",
    )


def stored_or_pending(state: Api, image_id: str) -> str | Response:
    """The image's current stored result (JSON text), or a 202 response while the job the API
    published last for it is in flight; ApiError 404 when there is neither."""
    checked_image_id(image_id)
    job_id, in_flight = uploads.upload_state(state.client, image_id)
    raw = results.stored_result(state.client, image_id)
    if raw is not None and not (in_flight and json.loads(raw).get("job_id") != job_id):
        return raw
    if in_flight and job_id is not None:  # (in flight implies a job id)
        return _pending(image_id, job_id, status_url(image_id))
    if job_id is not None:
        raise dead_lettered(image_id, job_id)
    raise ApiError(
        404,
        f"no result for image {image_id}: it was not submitted through this API, or its result "
        "expired (--result-ttl-s); submit it again",
    )


@router.get("/v1/jobs/{job_id}", responses=READ_RESPONSES)
def get_job(job_id: params.JobIdPath, request: Request) -> Response:
    """One job's own result (200), whatever other jobs of the same image did; 202 while it is in
    the pipeline."""
    return _as_response(job_result_or_pending(api(request), job_id))


@router.get("/v1/results/{image_id}", responses=READ_RESPONSES)
def get_result(image_id: params.ImageIdPath, request: Request) -> Response:
    """One image's latest result (200), whichever job it came from (its `job_id` says); 202
    while the image's latest upload is still in the pipeline."""
    return _as_response(stored_or_pending(api(request), image_id))


def _as_response(found: str | Response) -> Response:
    return found if isinstance(found, Response) else Response(found, media_type="application/json")


PICTURE_RESPONSES: Responses = {
    **READ_RESPONSES,
    200: {"content": {"image/jpeg": {}}, "description": "the annotated picture"},
    409: ERRORS[409],
}


@router.get("/v1/jobs/{job_id}/picture", response_class=Response, responses=PICTURE_RESPONSES)
def get_job_picture(job_id: params.JobIdPath, request: Request) -> Response:
    """The job's own result drawn on its photo."""
    state = api(request)
    found = job_result_or_pending(state, job_id)
    if isinstance(found, Response):
        return found
    result = json.loads(found)
    # The sink's picture is of the image's latest result: this job's only while it is the latest.
    latest = results.stored_result(state.client, result["image_id"])
    return _picture(state, result, latest is not None and json.loads(latest).get("job_id") == job_id)


@router.get("/v1/results/{image_id}/picture", response_class=Response, responses=PICTURE_RESPONSES)
def get_picture(image_id: params.ImageIdPath, request: Request) -> Response:
    """The annotated JPEG: the sink's, or drawn now from the result and the image's bytes."""
    state = api(request)
    found = stored_or_pending(state, image_id)
    if isinstance(found, Response):
        return found
    return _picture(state, json.loads(found), True)


@router.get(
    "/v1/results/{image_id}/photo",
    response_class=Response,
    responses={
        **PICTURE_RESPONSES,
        200: {"content": {"image/jpeg": {}}, "description": "the photo, nothing drawn on it"},
    },
)
def get_photo(image_id: params.ImageIdPath, request: Request) -> Response:
    """The photo as analysed (upright, as JPEG) with nothing drawn on it: the result's box
    coordinates are in its pixels (the web page draws its own boxes over it)."""
    found = stored_or_pending(api(request), image_id)
    if isinstance(found, Response):
        return found
    return photo_response(json.loads(found))


def photo_response(result: dict) -> Response:
    """The plain photo of `result`; 409 for an error result, 404 when it cannot be read."""
    check_drawable(result)
    try:
        return Response(plain_jpeg(result), media_type="image/jpeg")
    except NoPicture as exc:
        raise ApiError(404, str(exc)) from None


def check_drawable(result: dict) -> None:
    if result.get("status") != "ok":
        raise ApiError(
            409,
            f"image {result['image_id']} has an error result "
            f"({(result.get('error') or {}).get('message')}): there is no picture; GET its result "
            "for the reason",
        )


def _picture(state: Api, result: dict, sinks_own: bool) -> Response:
    """`result` drawn (`sinks_own`: the sink's picture is of this very result, when it drew one)."""
    return picture_response(result, state.config.output if sinks_own else None)


def picture_response(result: dict, output: Path | None) -> Response:
    """`result` drawn: the sink's picture in `output` when there is one (None: drawn anew); 409
    for an error result, 404 when the photo cannot be read."""
    check_drawable(result)
    try:
        return Response(annotated_jpeg(result, output), media_type="image/jpeg")
    except NoPicture as exc:
        raise ApiError(404, str(exc)) from None


@router.get("/v1/results", response_model=Page, responses={400: ERRORS[400], 503: ERRORS[503]})
def list_results(request: Request, query: ListQuery = Depends(list_query)) -> JSONResponse:
    """The latest results, newest first, a page at a time; or only those of one status, or of
    images whose id holds some text. A page may hold fewer than `limit` items only when it is
    the last (`next_cursor` null)."""
    try:
        rows, next_cursor = recent.recent_results(
            api(request).client, limit=query.limit, before=query.cursor, since_ms=query.since_ms, wanted=query.wanted
        )
    except recent.BadCursor as exc:
        raise ApiError(400, str(exc)) from None
    return page_json(rows, next_cursor)
