"""The FastAPI application of `faces serve`: `create_app(config)` wires the routes (images.py,
views.py, probes.py), the JSON errors (errors.py), the result follower, the metrics, the web
page (static/) and the OpenAPI document (document.py)."""

from __future__ import annotations

import contextlib

from fastapi import FastAPI

from faces.ops.metrics import ApiMetrics
from faces.ops.web import document, errors, export, images, page, people, probes, views
from faces.ops.web.admission import ReadingSlots, WaitingSlots
from faces.ops.web.config import ServeConfig
from faces.ops.web.follower import ResultFollower
from faces.ops.web.guard import GuardHostAndOrigin
from faces.ops.web.retention import UploadSweeper
from faces.ops.web.state import Api
from faces.streams.connection import connect, redact
from faces.streams.status import pipeline_status

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
FOLLOWER_START_S = 2.0  # at start, how long to let the follower find where results stand


def create_app(config: ServeConfig) -> FastAPI:
    """The API for the pipeline on `config.redis_url`; Redis need not be up yet (503 until it is)."""
    client = connect(config.redis_url, check=False)
    metrics = ApiMetrics(lambda: pipeline_status(client))
    # Its own client: its blocking XREAD holds a connection for up to a second at a time.
    follower = ResultFollower(connect(config.redis_url, check=False), metrics)
    sweeper = UploadSweeper(config.uploads, config.result_ttl_s)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        follower.start()
        sweeper.start()
        follower.wait_started(FOLLOWER_START_S)
        yield
        sweeper.stop()
        follower.stop()
        client.close()

    app = FastAPI(
        title="faces",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Face analysis over HTTP: submit images, read their results (docs/http.md).",
    )
    app.state.api = Api(
        config, client, follower, metrics, ReadingSlots(config.uploads_reading), WaitingSlots(config.max_waiting)
    )
    errors.install(app, redact(config.redis_url))
    for router in (images.router, views.router, probes.router, export.router, people.router):
        app.include_router(router)
    page.mount(app)  # the web page and /docs, from installed files only
    # FastAPI's documented way to extend its schema (replace app.openapi); mypy refuses any
    # assignment to a method, whatever its type.
    app.openapi = lambda: document.build(app, config)  # type: ignore[method-assign]
    app.add_middleware(GuardHostAndOrigin, answers_to=config.answers_to())
    app.add_middleware(CountRequests, metrics=metrics)  # outermost: counts the guard's refusals too
    return app


class CountRequests:
    """Counts every answer by method, route template and status (faces_http_requests_total)."""

    def __init__(self, app, metrics: ApiMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500

        async def sending(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            # The method as sent would let any client add series without end (h11 takes any name).
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            self.metrics.requests.labels(method, route, str(status)).inc()
