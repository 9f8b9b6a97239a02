"""`faces browse`: the web page over the results a finished `faces run` left in --storage (one
JSON per image) and --output (its pictures), with no Redis and no pipeline. The same page and
the same read-only endpoints as `faces serve` (GET /v1/results[/ID[/picture|/photo]]); uploads
are refused (405), and /v1/status says `read_only` so the page shows no upload box nor stages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from faces.consumers.storage import inside
from faces.ops.web import errors, page, params
from faces.ops.web.config import ServeConfig
from faces.ops.web.errors import ApiError
from faces.ops.web.guard import GuardHostAndOrigin
from faces.ops.web.listing import ListQuery, list_query, page_json
from faces.ops.web.state import require_token
from faces.ops.web.views import photo_response, picture_response
from faces.streams import recent

router = APIRouter(dependencies=[Depends(require_token)])


@dataclass(frozen=True)
class Stored:
    """One result file's listing fields (its text is read again when asked for)."""

    image_id: str
    job_id: str
    status: str
    finished_ms: int


class StoredResults:
    """The result files of one folder, newest first; each file parsed once per change (mtime)."""

    def __init__(self, storage: Path):
        self.storage = storage
        self._seen: dict[Path, tuple[int, Stored | None]] = {}

    def newest_first(self) -> list[recent.Finished]:
        """Every readable result, newest first (by processed_at), each with a cursor
        `<ms>-<n>` that orders them as an entry id would."""
        rows = []
        seen = {}
        for path in self.storage.glob("*.json"):
            try:
                stamp = path.stat().st_mtime_ns
            except OSError:
                continue  # removed meanwhile
            known = self._seen.get(path)
            found = known[1] if known and known[0] == stamp else _summary(path)
            seen[path] = (stamp, found)
            if found is not None:
                rows.append(found)
        self._seen = seen
        rows.sort(key=lambda r: (r.finished_ms, r.image_id))
        out, previous, n = [], None, 0
        for row in rows:  # oldest first: n counts the results of one millisecond
            n = n + 1 if row.finished_ms == previous else 0
            previous = row.finished_ms
            out.append(
                recent.Finished(f"{row.finished_ms}-{n}", row.image_id, row.job_id, row.status, row.finished_ms, None)
            )
        return out[::-1]

    def text(self, image_id: str) -> str | None:
        """The JSON text of `image_id`'s result file; None when there is none."""
        try:
            return inside(self.storage, f"{image_id}.json").read_text()
        except (OSError, ValueError):
            return None


def _summary(path: Path) -> Stored | None:
    """The listing fields of a result file; None for a file that is not a result."""
    try:
        doc = json.loads(path.read_text())
        processed = datetime.fromisoformat(doc["processed_at"].replace("Z", "+00:00"))
        return Stored(doc["image_id"], doc.get("job_id") or "", doc["status"], int(processed.timestamp() * 1000))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # not JSON, or not a result (a file written by hand): not listed


def _stored(request: Request) -> StoredResults:
    return request.app.state.api.results


def _key(cursor: str) -> tuple[int, int]:
    ms, _, n = cursor.partition("-")
    return int(ms), int(n)


@router.get("/v1/results", response_model=None)
def list_results(request: Request, query: ListQuery = Depends(list_query)) -> JSONResponse:
    """The results in the folder, newest first (by processed_at), a page at a time."""
    try:
        recent.check_cursor(query.cursor)
    except recent.BadCursor as exc:
        raise ApiError(400, str(exc)) from None
    before = _key(query.cursor) if query.cursor else None
    rows = [
        r
        for r in _stored(request).newest_first()
        if (before is None or _key(r.cursor) < before)
        and r.finished_ms >= (query.since_ms or 0)
        and query.wanted.matches(r.image_id, r.status)
    ]
    page_rows = rows[: query.limit]
    stored = _stored(request)
    page_rows = [
        recent.Finished(r.cursor, r.image_id, r.job_id, r.status, r.finished_ms, stored.text(r.image_id))
        for r in page_rows
    ]
    return page_json(page_rows, page_rows[-1].cursor if len(rows) > query.limit else None)


def _result(request: Request, image_id: str) -> str:
    if not params.is_image_id(image_id):
        raise ApiError(404, f"{image_id!r} is not an image id (NAME-<8 hex digits>): check the id")
    found = _stored(request).text(image_id)
    if found is None:
        raise ApiError(
            404,
            f"no result for image {image_id} in {_stored(request).storage}: this is `faces browse`, "
            "which shows the results a `faces run` wrote there",
        )
    return found


@router.get("/v1/results/{image_id}", response_model=None)
def get_result(image_id: params.ImageIdPath, request: Request) -> Response:
    """One image's result file."""
    return Response(_result(request, image_id), media_type="application/json")


@router.get("/v1/results/{image_id}/picture", response_class=Response)
def get_picture(image_id: params.ImageIdPath, request: Request) -> Response:
    """The annotated JPEG from --output, or drawn now from the result and the photo."""
    return picture_response(json.loads(_result(request, image_id)), request.app.state.api.config.output)


@router.get("/v1/results/{image_id}/photo", response_class=Response)
def get_photo(image_id: params.ImageIdPath, request: Request) -> Response:
    """The photo, nothing drawn on it (read again from where `faces run` found it)."""
    return photo_response(json.loads(_result(request, image_id)))


@router.get("/v1/status", response_model=None)
def status(request: Request) -> JSONResponse:
    """`read_only`: no pipeline here; the folder and how many results it holds."""
    stored = _stored(request)
    return JSONResponse({"read_only": True, "storage": str(stored.storage), "results": len(stored.newest_first())})


@router.post("/v1/images", response_model=None, status_code=405)
def refuse_upload() -> JSONResponse:
    """Refused: `faces browse` only shows results."""
    raise ApiError(
        405,
        "this is `faces browse`, which only shows the results in its --storage: to analyse photos "
        "run `faces up --serve` (or `faces run FOLDER`)",
        {"Allow": "GET"},
    )


@dataclass(frozen=True)
class Browsing:
    """What the routes share (`config.token` for require_token, as `faces serve` has it)."""

    config: ServeConfig
    results: StoredResults


def create_browse_app(storage: Path, output: Path, host: str, token: str | None) -> FastAPI:
    """The read-only app over `storage` and `output`."""
    app = FastAPI(
        title="faces browse",
        version="1",
        docs_url=None,
        redoc_url=None,
        description="The results a `faces run` left in a folder, read-only (docs/http.md).",
    )
    app.state.api = Browsing(ServeConfig(redis_url="", output=output, token=token, host=host), StoredResults(storage))
    errors.install(app, "(none: faces browse reads files)")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok"}

    app.include_router(router)
    page.mount(app)
    app.add_middleware(GuardHostAndOrigin, answers_to=app.state.api.config.answers_to())
    return app
