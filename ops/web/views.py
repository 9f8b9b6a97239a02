"""The GET endpoints of results: one job's own result, one image's latest result, the latest
results newest first, the annotated pictures; and the documents they answer (documented in
/docs and docs/http.md).

Several jobs may share an image (the same bytes under the same name, from one client or
many): /v1/jobs/<job id> answers that job's own result and metadata, whatever the others;
/v1/results/<image id> answers the image's latest result, whichever job it came from."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Optional
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from faces import settings as defaults
from faces.ops.web.errors import ApiError
from faces.ops.web.picture import NoPicture, annotated_jpeg
from faces.ops.web.state import Api, api, checked_image_id, require_token
from faces.streams import recent, results, uploads

router = APIRouter(dependencies=[Depends(require_token)])
JOB_ID = re.compile(r"[0-9a-f]{32}")  # a job id as the API makes them (uuid4 hex)


class Accepted(BaseModel):
    """A job in the pipeline: where to find its own result (status_url), and its image's latest
    (result_url)."""

    image_id: str
    job_id: str
    status: str  # "pending"
    status_url: str
    picture_url: str
    result_url: Optional[str] = None
    submitted_at: Optional[str] = None
    metadata: dict[str, str] = {}


class ErrorBody(BaseModel):
    error: str


class PageItem(BaseModel):
    cursor: str
    image_id: str
    job_id: str
    status: str
    finished_at: str
    result: Optional[dict] = None


class Page(BaseModel):
    items: list[PageItem]
    next_cursor: Optional[str]


RESULT_RESPONSE = {"description": "The result document, faces.result/1",
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}}
ERRORS = {status: {"model": ErrorBody, "description": meaning} for status, meaning in (
    (400, "malformed request"), (401, "missing or wrong bearer token"), (404, "unknown image"),
    (413, "over the size limit"), (415, "not an image"), (429, "pipeline above its high-water mark"),
    (503, "Redis unreachable"))}


def status_url(image_id: str) -> str:
    """The image's result URL path; percent-encoded, since an image id keeps the letters of its
    file name (`фото-0123abcd`) and a Location header carries only latin-1."""
    return f"/v1/results/{quote(image_id, safe='')}"


def job_url(job_id: str) -> str:
    """The URL path of one job's own result."""
    return f"/v1/jobs/{job_id}"


def accepted(image_id: str, job_id: str, metadata: dict[str, str]) -> Accepted:
    """POST's answer for a job just published and not finished yet."""
    return Accepted(image_id=image_id, job_id=job_id, status="pending", status_url=job_url(job_id),
                    picture_url=job_url(job_id) + "/picture", result_url=status_url(image_id),
                    submitted_at=iso_ms(time.time() * 1000), metadata=metadata)


def iso_ms(epoch_ms: float) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def note_published(state: Api, job_id: str, image_id: str) -> None:
    """Remember `job_id` as a job of `image_id` (for GET /v1/jobs/<job id>), as long as results."""
    uploads.note_job(state.client, job_id, image_id, state.config.result_ttl_s)


def own_result(state: Api, job_id: str) -> str | None:
    """The result document of `job_id` itself (None: not finished, or not a job of this API)."""
    return uploads.job_state(state.client, job_id).result


def job_result_or_pending(state: Api, job_id: str) -> str | Response:
    """The job's own result (JSON text), or a 202 response while it is in flight; ApiError 404
    when it is unknown or ended without a result."""
    if not JOB_ID.fullmatch(job_id):
        raise ApiError(404, f"{job_id!r} is not a job id (32 hex digits, as POST /v1/images answered): check the id")
    job = uploads.job_state(state.client, job_id)
    if job.result is not None:
        return job.result
    if job.image_id is None:
        raise ApiError(404, f"no job {job_id}: it was not submitted through this API, or its result expired "
                            "(--result-ttl-s); submit the image again")
    if job.in_flight:
        return _pending(job.image_id, job_id, job_url(job_id))
    raise dead_lettered(job.image_id, job_id)


def _pending(image_id: str, job_id: str, url: str) -> JSONResponse:
    pending = Accepted(image_id=image_id, job_id=job_id, status="pending", status_url=url,
                       picture_url=url + "/picture")
    return JSONResponse(pending.model_dump(exclude={"submitted_at", "metadata", "result_url"}), status_code=202,
                        headers={"Retry-After": "1"})


def dead_lettered(image_id: str, job_id: str) -> ApiError:
    return ApiError(404, f"image {image_id} has no result: its job {job_id} ended without one (dead-lettered "
                         "at the sink); `faces dlq list` says why; submit it again")


def stored_or_pending(state: Api, image_id: str) -> str | Response:
    """The image's current stored result (JSON text), or a 202 response while the job the API
    published last for it is in flight; ApiError 404 when there is neither."""
    checked_image_id(image_id)
    job_id, in_flight = uploads.upload_state(state.client, image_id)
    raw = results.stored_result(state.client, image_id)
    if raw is not None and not (in_flight and json.loads(raw).get("job_id") != job_id):
        return raw
    if in_flight:
        return _pending(image_id, job_id, status_url(image_id))
    if job_id is not None:
        raise dead_lettered(image_id, job_id)
    raise ApiError(404, f"no result for image {image_id}: it was not submitted through this API, or its result "
                        "expired (--result-ttl-s); submit it again")


@router.get("/v1/jobs/{job_id}", responses={200: RESULT_RESPONSE, 202: {"model": Accepted}, 404: ERRORS[404]})
def get_job(job_id: str, request: Request) -> Response:
    """One job's own result (200), whatever other jobs of the same image did; 202 while it is in
    the pipeline."""
    return _as_response(job_result_or_pending(api(request), job_id))


@router.get("/v1/results/{image_id}", responses={200: RESULT_RESPONSE, 202: {"model": Accepted}, 404: ERRORS[404]})
def get_result(image_id: str, request: Request) -> Response:
    """One image's latest result (200), whichever job it came from (its `job_id` says); 202
    while the image's latest upload is still in the pipeline."""
    return _as_response(stored_or_pending(api(request), image_id))


def _as_response(found: str | Response) -> Response:
    return found if isinstance(found, Response) else Response(found, media_type="application/json")


PICTURE_RESPONSES = {200: {"content": {"image/jpeg": {}}, "description": "the annotated picture"},
                     202: {"model": Accepted}, 404: ERRORS[404],
                     409: {"model": ErrorBody, "description": "an error result: nothing to draw"}}


@router.get("/v1/jobs/{job_id}/picture", response_class=Response, responses=PICTURE_RESPONSES)
def get_job_picture(job_id: str, request: Request) -> Response:
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
def get_picture(image_id: str, request: Request) -> Response:
    """The annotated JPEG: the sink's, or drawn now from the result and the image's bytes."""
    state = api(request)
    found = stored_or_pending(state, image_id)
    if isinstance(found, Response):
        return found
    return _picture(state, json.loads(found), True)


def _picture(state: Api, result: dict, sinks_own: bool) -> Response:
    """`result` drawn (`sinks_own`: the sink's picture is of this very result, when it drew one)."""
    if result.get("status") != "ok":
        raise ApiError(409, f"image {result['image_id']} has an error result "
                            f"({(result.get('error') or {}).get('message')}): there is no picture; GET its result "
                            "for the reason")
    try:
        return Response(annotated_jpeg(result, state.config.output if sinks_own else None), media_type="image/jpeg")
    except NoPicture as exc:
        raise ApiError(404, str(exc)) from None


@router.get("/v1/results", response_model=Page, responses={400: ERRORS[400]})
def list_results(
    request: Request,
    limit: int = Query(defaults.HTTP_PAGE_LIMIT, ge=1, le=defaults.HTTP_PAGE_MAX, description="Results per page."),
    since: Optional[str] = Query(None, description="Only results finished since: ISO 8601 time or epoch seconds."),
    cursor: Optional[str] = Query(None, description="The next_cursor of the previous page."),
) -> JSONResponse:
    """The latest results, newest first, a page at a time."""
    try:
        rows, next_cursor = recent.recent_results(api(request).client, limit=limit, before=cursor,
                                                  since_ms=_since_ms(since) if since else None)
    except recent.BadCursor as exc:
        raise ApiError(400, str(exc)) from None
    items = [{"cursor": r.cursor, "image_id": r.image_id, "job_id": r.job_id, "status": r.status,
              "finished_at": iso_ms(r.finished_ms), "result": json.loads(r.result) if r.result else None}
             for r in rows]
    return JSONResponse({"items": items, "next_cursor": next_cursor})


def _since_ms(since: str) -> int:
    """Epoch milliseconds of `since` (ISO 8601 or epoch seconds); 400 for anything else,
    including times before 1970 or past what a stream id can hold."""
    bad = ApiError(400, f"since={since!r} is neither an ISO 8601 time nor epoch seconds after 1970: "
                        "send e.g. 2026-11-27T10:00:00Z or 1764237600")
    try:
        seconds = float(since)
    except ValueError:
        try:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise bad from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = moment.timestamp()
    if not 0 <= seconds < recent.MAX_MS / 1000:  # also NaN and infinity
        raise bad
    return int(seconds * 1000)
