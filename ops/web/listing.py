"""GET /v1/results, the listing: its query (page size, since, cursor, status, name) declared
once for `faces serve` (views.py) and `faces browse` (browse.py), and its answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from fastapi import Query
from fastapi.responses import JSONResponse

from faces import settings as defaults
from faces.ops.web import params
from faces.streams import recent

NAME_MAX = 120  # an image id's stem is at most 80 characters; a file name may add its extension


@dataclass(frozen=True)
class ListQuery:
    limit: int
    since_ms: int | None
    cursor: str | None
    wanted: recent.Wanted


def list_query(
    limit: int = Query(defaults.HTTP_PAGE_LIMIT, ge=1, le=defaults.HTTP_PAGE_MAX, description="Results per page."),
    since: params.Since = None,
    cursor: params.Cursor = None,
    status: Literal["ok", "error", "dead_lettered"] | None = Query(
        None,
        description="Only results with this status; `dead_lettered` lists the dead letters that name an image "
        "(jobs that ended without a result), their reason in `error`.",
    ),
    q: str | None = Query(
        None,
        min_length=1,
        max_length=NAME_MAX,
        description="Only images whose id contains this text, case-insensitive (the image id "
        "keeps the file name's stem: `group.jpg` or `grou` find `group-c30558ec`).",
    ),
) -> ListQuery:
    return ListQuery(limit, params.since_ms(since) if since is not None else None, cursor, recent.Wanted(status, q))


def page_json(rows: list[recent.Finished], next_cursor: str | None) -> JSONResponse:
    """The listing's answer: `{"items": [...], "next_cursor"}`."""
    items = []
    for r in rows:
        item = {
            "cursor": r.cursor,
            "image_id": r.image_id,
            "job_id": r.job_id,
            "status": r.status,
            "finished_at": iso_ms(r.finished_ms),
            "result": json.loads(r.result) if r.result else None,
        }
        if r.error is not None:
            item["error"] = r.error
        items.append(item)
    return JSONResponse({"items": items, "next_cursor": next_cursor})


def iso_ms(epoch_ms: float) -> str:
    return (
        datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
