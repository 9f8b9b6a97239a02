"""Every error the API answers, as `{"error": "..."}` with its status: one sentence naming the
cause and the fix, never a traceback."""

from __future__ import annotations

import redis
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from faces.errors import FacesError
from faces.schemas.events import EventError
from faces.streams.transient import is_transient

log = structlog.get_logger(__name__)

RETRY_AFTER_S = 5  # what 429 and 503 tell a client to wait before trying again


class ApiError(FacesError):
    """An answer other than success: `status` and the one-line `message` of `{"error": ...}`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.http_status = status
        self.headers = headers or {}

    def http_headers(self) -> dict[str, str]:
        return self.headers


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def install(app: FastAPI, redis_where: str) -> None:
    """Answer every known failure as JSON; `redis_where` names the Redis in 503 messages."""

    @app.exception_handler(FacesError)
    async def own_error(_request: Request, exc: FacesError) -> JSONResponse:
        if exc.http_status is None or exc.internal:  # not an answer to the client: the server's own failure,
            raise exc  # answered (and logged) by `unexpected` below, as any other exception
        return error_response(exc.http_status, str(exc), exc.http_headers())

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in exc.errors())
        return error_response(400, f"malformed request: {problems}; see /docs for what each parameter takes")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = (
            f"no such endpoint {request.method} {request.url.path}; see /docs for the API"
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(EventError)
    async def bad_metadata(_request: Request, exc: EventError) -> JSONResponse:
        return error_response(400, f"{exc}; send metadata as an object of short strings (docs/http.md)")

    @app.exception_handler(redis.RedisError)
    async def redis_error(_request: Request, exc: redis.RedisError) -> JSONResponse:
        if is_transient(exc):
            return error_response(
                503,
                f"Redis at {redis_where} is unreachable ({exc or type(exc).__name__}); "
                "start it (or `faces up`) and retry",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        log.error("redis.failed", error=str(exc), error_type=type(exc).__name__)
        return error_response(500, f"Redis at {redis_where} refused a command ({exc}); see the server log")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "request.failed",
            method=request.method,
            path=request.url.path,
            error_type=type(exc).__name__,
            error=str(exc),
        )
        return error_response(
            500,
            f"internal error ({type(exc).__name__}) answering {request.method} "
            f"{request.url.path}; the server log has the details",
        )
