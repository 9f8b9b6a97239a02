"""What each endpoint answers, as pydantic models: the OpenAPI document states them
(document.py), and the views build their answers from them, so the two cannot part ways.
The result document itself is schemas/result.schema.json, placed in the document as `Result`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from faces.schemas import formats

RESULT_REF: dict[str, Any] = {"$ref": "#/components/schemas/Result"}
ImageId = Field(pattern=formats.image_id_pattern(), description="NAME-<8 hex digits of the image's sha256>")
JobId = Field(pattern=formats.JOB_ID_PATTERN, description="32 hex digits")
Time = Field(json_schema_extra={"format": "date-time"}, description="RFC 3339, UTC, milliseconds")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(Strict):
    """Every refusal and failure: one sentence naming the cause and the fix."""

    error: str


class NotReady(Strict):
    """/readyz while a stage has no live worker."""

    error: str
    stages: dict[str, int]


class Pending(Strict):
    """A job still in the pipeline: poll `status_url` (Retry-After says when)."""

    image_id: str = ImageId
    job_id: str = JobId
    status: Literal["pending"]
    status_url: str
    picture_url: str


class Accepted(Pending):
    """A job just published: where to find its own result (status_url), and its image's
    latest (result_url)."""

    result_url: str
    submitted_at: str = Time
    metadata: dict[str, str] = Field(json_schema_extra=formats.metadata_schema())


class DeadLetterError(Strict):
    stage: str
    type: str
    message: str


class PageItem(Strict):
    cursor: str = Field(pattern=formats.ENTRY_ID_PATTERN)
    image_id: str = ImageId
    job_id: str
    status: str = Field(description="ok, error, superseded; dead_lettered when listing status=dead_lettered")
    finished_at: str = Time
    result: dict[str, Any] | None = Field(
        json_schema_extra={"anyOf": [RESULT_REF, {"type": "null"}]},
        description="the image's stored result (null: expired)",
    )
    error: DeadLetterError | None = Field(None, description="a dead letter's reason (status dead_lettered)")


class Page(Strict):
    items: list[PageItem]
    next_cursor: str | None = Field(
        json_schema_extra={"anyOf": [{"type": "string", "pattern": formats.ENTRY_ID_PATTERN}, {"type": "null"}]},
        description="pass as ?cursor= for the next page; null: no more",
    )


class Health(Strict):
    status: Literal["ok"]


class Ready(Strict):
    status: Literal["ready"]
    stages: dict[str, int]


class StreamStatus(BaseModel):
    name: str
    length: int
    groups: list[dict[str, Any]]


class Status(BaseModel):
    """The document `faces status --json` prints (docs/operations.md)."""

    streams: list[StreamStatus]
    dead_letters: int
    inflight: int
    workers: list[dict[str, Any]]
