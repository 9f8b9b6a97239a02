"""POST /v1/images: take one upload, publish it as a job (published before answering), and
answer 202 with where its result will be, or 200 with the result when ?wait= saw it in time."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from faces.ops.web import params, views
from faces.ops.web.admission import admit_upload
from faces.ops.web.body import JSON_FIELDS, MULTIPART_FIELDS, RAW_TYPES, refuse_declared_size
from faces.ops.web.errors import ApiError
from faces.ops.web.examples import JSON_UPLOAD
from faces.ops.web.state import api, require_token
from faces.schemas import formats

router = APIRouter(dependencies=[Depends(require_token)])
DEAD = "dead"  # the follower's status of a job the sink dead-lettered (streams/results.py)

# The upload in its three forms, as body.py reads them. An image is a string of format binary
# (base64 in JSON); that its bytes must be an image of a format the pipeline reads is beyond
# a schema: the requestBody's description and 415 say it.
_IMAGE = {"type": "string", "format": "binary"}
_METADATA = formats.metadata_schema()
_FIELDS = {"file": {**_IMAGE, "description": "the image file"}, "metadata": _METADATA}
_JSON_FIELDS = {
    "image_base64": {
        "type": "string",
        "format": "byte",
        "minLength": 1,
        "description": "the image's bytes in standard base64",
    },
    "filename": {"type": "string", "description": "names the image"},
    "metadata": _METADATA,
}
REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "additionalProperties": False,
                "properties": {name: _FIELDS[name] for name in MULTIPART_FIELDS},
            },
            "encoding": {"metadata": {"contentType": "application/json"}},
        },
        **{kind: {"schema": _IMAGE} for kind in RAW_TYPES},
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["image_base64"],
                "additionalProperties": False,
                "properties": {name: _JSON_FIELDS[name] for name in JSON_FIELDS},
            },
            "example": JSON_UPLOAD,
        },
    },
}
ACCEPTED = {
    "model": views.Accepted,
    "description": "the job is in the pipeline",
    "headers": {
        "Location": {"required": True, "schema": {"type": "string"}, "description": "the job's own result (status_url)"}
    },
}


async def _wait_for_own_result(state, future, wait: float, job_id: str, image_id: str) -> str | None:
    """The job's own result if it came within `wait` seconds; None otherwise."""
    try:
        await asyncio.wait_for(future, timeout=wait)
    except asyncio.TimeoutError:
        state.follower.forget(job_id)
    if future.done() and not future.cancelled() and future.result() == DEAD:
        raise views.dead_lettered(image_id, job_id)  # as GET answers it
    return await run_in_threadpool(views.own_result, state, job_id)  # never another job's


@router.post(
    "/v1/images",
    status_code=202,
    openapi_extra={"requestBody": REQUEST_BODY},
    responses={
        200: views.RESULT_RESPONSE,
        202: ACCEPTED,
        **{status: answer for status, answer in views.ERRORS.items() if status != 409},
    },
)
async def submit_image(
    request: Request,
    wait: params.Wait = None,
    filename: params.FileName = None,
    client_ref: params.MetadataValue = None,
    source: params.MetadataValue = None,
    captured_at: params.CapturedAt = None,
) -> Response:
    """Submit one image: a multipart form (field `file`), a raw image body, or JSON with
    `image_base64`. 202 once the job is in Redis; with `?wait=S`, 200 and the result if it
    came within S seconds."""
    state = api(request)
    config = state.config
    if wait is not None and wait > config.wait_max_s:
        raise ApiError(
            400,
            f"wait={wait:g} is over this server's maximum of {config.wait_max_s:g} s: "
            f"ask for at most {config.wait_max_s:g}, then poll the status URL",
        )
    refuse_declared_size(request, config.max_image_bytes)
    job_id = uuid.uuid4().hex
    # Past the cap of waiting requests the upload is answered 202 at once (admission.WaitingSlots).
    waits = bool(wait) and state.waiting.take()
    try:
        future = state.follower.expect(job_id, waiting=waits)
        try:
            sent, metadata = await admit_upload(request, state, job_id)
        except BaseException:
            state.follower.forget(job_id, published=False)
            raise
        await run_in_threadpool(views.note_published, state, job_id, sent.image_id)
        if future is not None and wait is not None:  # (a future only for a request that waits)
            finished = await _wait_for_own_result(state, future, wait, job_id, sent.image_id)
            if finished is not None:
                return Response(finished, media_type="application/json")
    finally:
        if waits:
            state.waiting.give_back()
    accepted = views.accepted(sent.image_id, job_id, metadata)
    return JSONResponse(accepted.model_dump(), status_code=202, headers={"Location": accepted.status_url})
