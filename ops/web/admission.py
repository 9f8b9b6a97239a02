"""Taking one upload into the pipeline: a reading slot, the body, then admission and publishing
in one atomic step (streams/publishing.py). Two limits hold however many clients upload at
once: at most `uploads_reading` bodies are read (and held in memory) at a time, and never more
than `high_water` images are in flight; past either the answer is a refusal with Retry-After
(503, 429), never a wait."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from faces.ops.web.body import Timeouts, read_upload
from faces.ops.web.errors import RETRY_AFTER_S, ApiError
from faces.ops.web.state import Api
from faces.producer.submit import Submitted, submit_bytes
from faces.schemas.events import check_metadata
from faces.streams import publishing


class ReadingSlots:
    """How many upload bodies are being read; counted on the event loop's one thread, so taking
    a slot needs no lock."""

    def __init__(self, size: int):
        self.size = size
        self.taken = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One slot while the body is read and published; 503 when all are taken."""
        if self.taken >= self.size:
            raise ApiError(
                503,
                f"{self.size} uploads are being read already (--uploads-reading): retry in {RETRY_AFTER_S} s",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        self.taken += 1
        try:
            yield
        finally:
            self.taken -= 1


class WaitingSlots:
    """How many requests hold their connection waiting for a result (?wait=). A request in
    progress is never dropped by the connection limit (transport.py), so without this cap
    `max_connections` clients waiting up to --wait-max-s would take every connection and
    /healthz would get 503 (review of issue 22 item 4). Past the cap a request does not wait:
    it is answered 202 at once with its status URL, as if ?wait were not given."""

    def __init__(self, size: int):
        self.size = size
        self.taken = 0

    def take(self) -> bool:
        if self.taken >= self.size:
            return False
        self.taken += 1
        return True

    def give_back(self) -> None:
        self.taken -= 1


def pipeline_full(high_water: int) -> ApiError:
    return ApiError(
        429,
        f"the pipeline has {high_water} or more images in flight (its high-water mark): retry in {RETRY_AFTER_S} s",
        {"Retry-After": str(RETRY_AFTER_S)},
    )


async def admit_upload(request: Request, state: Api, job_id: str) -> tuple[Submitted, dict[str, str]]:
    """Read the upload in `request` and publish it as job `job_id`: (what was published, its
    metadata). ApiError 429 when the pipeline is full (checked before reading, to spare the
    bytes, and again atomically with the publish), 503 when no reading slot is free, and the
    body's own (body.py)."""
    config = state.config
    if not await run_in_threadpool(publishing.has_room, state.client, config.high_water):
        raise pipeline_full(config.high_water)
    async with state.reading.slot():
        upload = await read_upload(request, config.max_image_bytes, Timeouts(config.body_timeout_s, config.body_idle_s))
        metadata = check_metadata(upload.metadata)
        try:
            sent = await run_in_threadpool(_publish, state, upload.data, upload.name, metadata, job_id)
        except publishing.NoRoom:
            raise pipeline_full(config.high_water) from None
    return sent, metadata


def _publish(state: Api, data: bytes | bytearray, name: str, metadata: dict[str, str], job_id: str) -> Submitted:
    """Keep the bytes, then admit and publish the job and record it as the image's latest (for
    GET's 202), in one step."""
    return submit_bytes(
        state.client,
        data,
        name,
        keep_in=state.config.uploads,
        metadata=metadata,
        job_id=job_id,
        upload_ttl_s=state.config.result_ttl_s,
        high_water=state.config.high_water,
    )
