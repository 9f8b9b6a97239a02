"""The parameters of the API, each declared once with the format it takes (schemas/formats.py):
FastAPI states the declaration in the OpenAPI document and checks requests against it (400 for
anything else, errors.py); what FastAPI cannot check itself (an image id answers 404, a time
in one of two forms) is checked here against the same definition the document states."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from faces import settings as defaults
from faces.ops.web.errors import ApiError
from faces.schemas import formats

IMAGE_ID_MAX_CHARS = formats.IMAGE_ID_MAX_CHARS  # the longest image id the pipeline makes
EARLIEST_S = 0  # `since` before 1970 means every result: the results stream starts there
_METADATA_VALUE = formats.metadata_schema()["additionalProperties"]
DATE_TIME = {"type": "string", "format": "date-time", "maxLength": _METADATA_VALUE["maxLength"]}
SINCE_SCHEMA = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "pattern": formats.EPOCH_SECONDS_PATTERN}]
}

ImageIdPath = Annotated[
    str,
    Path(
        description="An image id as POST /v1/images answered: NAME-<8 hex digits>; 404 for anything else.",
        json_schema_extra={"pattern": formats.image_id_pattern(), "maxLength": IMAGE_ID_MAX_CHARS},
    ),
]
JobIdPath = Annotated[
    str,
    Path(
        description="A job id as POST /v1/images answered (32 hex digits); 404 for anything else.",
        json_schema_extra={"pattern": formats.JOB_ID_PATTERN},
    ),
]
Limit = Annotated[int, Query(ge=1, le=defaults.HTTP_PAGE_MAX, description="Results per page.")]
Cursor = Annotated[
    str | None, Query(pattern=formats.ENTRY_ID_PATTERN, description="The next_cursor of the previous page.")
]
Since = Annotated[
    str | None,
    Query(
        description="Only results finished since then: an RFC 3339 time (e.g. 2026-11-27T10:00:00Z; one before "
        "1970 means all) or epoch seconds (e.g. 1764237600).",
        json_schema_extra=SINCE_SCHEMA,
    ),
]
Wait = Annotated[
    float | None,
    Query(
        ge=0, description="Seconds to wait for the result (at most the server's --wait-max-s, stated as the maximum)."
    ),
]
FileName = Annotated[str | None, Query(description="A raw body's file name (names the image).")]
MetadataValue = Annotated[
    str | None, Query(max_length=_METADATA_VALUE["maxLength"], description="Returned in the result's metadata.")
]
CapturedAt = Annotated[
    str | None,
    Query(
        max_length=_METADATA_VALUE["maxLength"],
        json_schema_extra={"format": "date-time"},
        description="Capture time (RFC 3339, e.g. 2026-11-27T10:00:00Z), returned in the result's metadata.",
    ),
]


def is_image_id(text: str) -> bool:
    return formats.is_image_id(text)


def is_job_id(text: str) -> bool:
    return formats.matches(formats.JOB_ID_PATTERN, text)


def since_ms(since: str) -> int:
    """Epoch milliseconds of `since` (SINCE_SCHEMA); ApiError 400 for anything else."""
    if formats.matches(formats.EPOCH_SECONDS_PATTERN, since):
        seconds: float | None = float(since)
    else:
        seconds = formats.rfc3339_epoch_s(since)
    if seconds is None:
        raise ApiError(
            400,
            f"since={since!r} is neither an RFC 3339 time nor epoch seconds: "
            "send e.g. 2026-11-27T10:00:00Z or 1764237600",
        )
    return int(max(seconds, EARLIEST_S) * 1000)


def check_date_time(what: str, value: object) -> None:
    """ApiError 400 unless `value` (when a string) is an RFC 3339 time (DATE_TIME)."""
    if isinstance(value, str) and formats.rfc3339_epoch_s(value) is None:
        raise ApiError(400, f"{what} {value!r} is not an RFC 3339 time: send e.g. 2026-11-27T10:00:00Z")
