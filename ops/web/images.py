"""POST /v1/images: take one upload, publish it as a job (published before answering), and
answer 202 with where its result will be, or 200 with the result when ?wait= saw it in time."""

from __future__ import annotations

import asyncio
import uuid
from typing import Optional

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from faces.ops.web import views
from faces.ops.web.admission import admit_upload
from faces.ops.web.body import refuse_declared_size
from faces.ops.web.errors import ApiError
from faces.ops.web.state import api, require_token

router = APIRouter(dependencies=[Depends(require_token)])
DEAD = "dead"  # the follower's status of a job the sink dead-lettered (streams/results.py)

REQUEST_BODY = {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"},
        "metadata": {"type": "string", "description": "a JSON object of strings"}}}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {"type": "object", "required": ["image_base64"], "properties": {
        "image_base64": {"type": "string"}, "filename": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}}},
}}


@router.post("/v1/images", status_code=202, openapi_extra={"requestBody": REQUEST_BODY},
             responses={200: views.RESULT_RESPONSE, 202: {"model": views.Accepted}, **views.ERRORS})
async def submit_image(
    request: Request,
    wait: Optional[float] = Query(None, ge=0, description="Seconds to wait for the result (at most the server's --wait-max-s)."),
    filename: Optional[str] = Query(None, description="A raw body's file name (names the image)."),
    client_ref: Optional[str] = Query(None, description="Your reference, returned in the result's metadata."),
    source: Optional[str] = Query(None, description="Source or camera id, returned in the result's metadata."),
    captured_at: Optional[str] = Query(None, description="Capture time (ISO 8601), returned in the result's metadata."),
) -> Response:
    """Submit one image: a multipart form (field `file`), a raw image body, or JSON with
    `image_base64`. 202 once the job is in Redis; with `?wait=S`, 200 and the result if it
    came within S seconds."""
    state = api(request)
    config = state.config
    if wait is not None and wait > config.wait_max_s:
        raise ApiError(400, f"wait={wait:g} is over this server's maximum of {config.wait_max_s:g} s: "
                            f"ask for at most {config.wait_max_s:g}, then poll the status URL")
    refuse_declared_size(request, config.max_image_bytes)
    job_id = uuid.uuid4().hex
    future = state.follower.expect(job_id, waiting=bool(wait))
    try:
        sent, metadata = await admit_upload(request, state, job_id)
    except BaseException:
        state.follower.forget(job_id, published=False)
        raise
    await run_in_threadpool(views.note_published, state, job_id, sent.image_id)
    if future is not None:
        try:
            await asyncio.wait_for(future, timeout=wait)
        except asyncio.TimeoutError:
            state.follower.forget(job_id)
        if future.done() and not future.cancelled() and future.result() == DEAD:
            raise views.dead_lettered(sent.image_id, job_id)  # as GET answers it
        finished = await run_in_threadpool(views.own_result, state, job_id)  # never another job's
        if finished is not None:
            return Response(finished, media_type="application/json")
    accepted = views.accepted(sent.image_id, job_id, metadata)
    return JSONResponse(accepted.model_dump(), status_code=202, headers={"Location": accepted.status_url})
