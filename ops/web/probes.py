"""The endpoints that describe the service rather than an image: /healthz, /readyz (no token:
probes), /v1/status and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from faces.ops.metrics import CONTENT_TYPE
from faces.ops.web.document import RETRY_AFTER, error
from faces.ops.web.models import ErrorBody, Health, NotReady, Ready, Status
from faces.ops.web.state import api, require_token
from faces.streams import names
from faces.streams.heartbeat import live_workers
from faces.streams.status import pipeline_status

router = APIRouter()


@router.get("/healthz", response_model=Health)
async def healthz() -> dict:
    """200 while the process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Ready,
    responses={
        503: {"model": NotReady | ErrorBody, "description": "a stage without a live worker, or Redis unreachable"}
    },
)
def readyz(request: Request) -> JSONResponse:
    """200 when Redis answers and every stage has a worker with a fresh heartbeat; else 503."""
    live = live_workers(api(request).client)  # Redis unreachable: 503 (errors.py)
    stages = {stage: sum(1 for w in live if w["stage"] == stage) for stage in names.STAGE_ORDER}
    missing = [stage for stage, count in stages.items() if not count]
    if missing:
        return JSONResponse(
            {
                "error": f"no live worker of {', '.join(missing)}: start `faces worker STAGE` for "
                "each (or `faces up`); `faces health` tells more",
                "stages": stages,
            },
            status_code=503,
        )
    return JSONResponse({"status": "ready", "stages": stages})


@router.get(
    "/v1/status",
    dependencies=[Depends(require_token)],
    response_model=Status,
    responses={503: error("Redis unreachable, or every connection busy", **RETRY_AFTER)},
)
def status(request: Request) -> JSONResponse:
    """The same document as `faces status --json`."""
    return JSONResponse(pipeline_status(api(request).client))


@router.get(
    "/metrics",
    dependencies=[Depends(require_token)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: the pipeline's per stage, and this API's own."""
    return Response(api(request).metrics.render(), media_type=CONTENT_TYPE)
