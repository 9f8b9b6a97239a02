"""GET /v1/export: every result Redis holds as one CSV or JSON Lines download, with the columns
of `faces export` (schemas/table.py). Rows are streamed a batch of results at a time."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from faces.ops.web.document import Responses
from faces.ops.web.state import api, require_token
from faces.ops.web.views import ERRORS
from faces.schemas import table
from faces.streams.stored import stored_image_ids, stored_results

router = APIRouter(dependencies=[Depends(require_token)])

FILE_NAME = "faces-results"  # the download's name, before .csv / .jsonl
_TEXT = {"schema": {"type": "string"}}
EXPORT_RESPONSES: Responses = {
    200: {
        "description": "The table: a header and one row per face or image (CSV), or one JSON object per row "
        "(JSON Lines), in image id order",
        "content": {"text/csv": _TEXT, "application/jsonl": _TEXT},
    },
    **{status: ERRORS[status] for status in (400, 401, 503)},
}


@router.get("/v1/export", response_class=StreamingResponse, responses=EXPORT_RESPONSES)
def export(
    request: Request,
    fmt: table.Format = Query(
        "csv",
        alias="format",
        description="csv (opens in a spreadsheet as is: UTF-8 with a BOM) or jsonl (one JSON object per line).",
    ),
    per: table.Per = Query(
        "face",
        description="One row per face (an image without faces, or with an error, still gets one row) or per image.",
    ),
) -> StreamingResponse:
    """Every image's latest result that Redis still holds (--result-ttl-s) as one file, the same
    table as `faces export`: file, image id, status, error, box, age, gender, pose, quality, ..."""
    client = api(request).client
    image_ids = stored_image_ids(client)  # here, so that Redis being down is a 503, not a cut download

    def documents() -> Iterator[dict]:
        for raw in stored_results(client, image_ids):
            yield json.loads(raw)

    return StreamingResponse(
        table.render(table.rows(documents(), per), fmt, per),
        media_type=table.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{FILE_NAME}.{fmt}"'},
    )
