"""The consumer runtime of the image pipeline: generic stream delivery (streams/delivery.py) plus
what every pipeline stage shares and no stage writes itself:

- each job being worked on is recorded as held (reading.hold), so that an entry deleted from the
  stream while pending still gets an error result for its image;
- stages that need pixels are handed the claim-checked image bytes (one MGET per batch); a job
  whose bytes are gone is a late duplicate (no longer in flight) or a dead letter (except at the
  sink, whose bytes serve only the picture);
- the pixels a stage forwards (detect's face regions) are kept under the job's pixels key in the
  same commit as the forward; stages that take them (`takes_pixels`) are handed those instead of
  the bytes, so only detect decodes the photo (the bytes are fetched only for jobs with none kept:
  a replay from a later stage, a dead-letter retry);
- the images stream keeps retention_s of acknowledged history, for `faces replay`;
- error results are reported once, by the stage they arose in (or the sink).

A new stage is its step (models/) and its route (consumers/registry.py, streams/names.py):
nothing here or in streams/delivery.py changes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import redis

from faces.schemas import events
from faces.schemas.job import Job
from faces.streams import names, reading
from faces.streams.commit import BatchEffects
from faces.streams.delivery import ConsumerCounters, StreamConsumer
from faces.streams.outcomes import Delivery, Finish, Forward, Outcome
from faces.streams.reading import RawEntry

__all__ = ["ConsumerCounters", "StageConsumer"]


class StageConsumer(StreamConsumer):
    """Runs one pipeline stage as consumer `consumer` of its group until stopped (or drained, in
    burst): StageConsumer(client, stage, settings, consumer, on_overrun).run()."""

    def __init__(self, client, stage, *args, **kwargs):
        super().__init__(client, stage, *args, **kwargs)
        attach = getattr(stage, "attach", None)  # a stage that keeps state of its own in Redis (embed: the people)
        if attach is not None:
            attach(client)

    def _triage(self, entries: list[RawEntry], batch: BatchEffects) -> list[Delivery]:
        """The deliveries the stage is handed, their jobs recorded as held (should the entry be
        deleted from the stream while pending), with their pixels or image bytes when the stage
        needs them: the record and the fetch go in one round trip."""
        deliveries = super()._triage(entries, batch)
        keys = self._fetch_keys(deliveries)
        with self.client.pipeline(transaction=False) as pipe:
            records = {d.entry_id: reading.held_record(d.job) for d in deliveries}
            reading.hold(cast(redis.Redis, pipe), self.route.input_stream, records)
            if keys:
                pipe.mget(keys)
            replies = pipe.execute()
        return self._attach_images(deliveries, replies[-1] if keys else [], batch)

    def _fetch_keys(self, deliveries: list[Delivery]) -> list[str]:
        """What the stage is handed with each job: its kept pixels (`takes_pixels`), its image
        bytes (`needs_image`), or nothing."""
        if not self.stage.needs_image:
            return []
        key = names.pixels_key if getattr(self.stage, "takes_pixels", False) else names.blob_key
        return [key(d.job["job_id"]) for d in deliveries]

    def _jobs_of_deleted(self, entry_ids: list[str]) -> dict[str, Job]:
        """Jobs rebuilt from the records kept when a consumer took their entries (reading.hold);
        an entry taken by a release that kept none has no job."""
        records = reading.held(self.client, self.route.input_stream, entry_ids)
        jobs = {i: events.salvage(r, self.settings.max_event_bytes) for i, r in records.items()}
        return {i: job for i, job in jobs.items() if job is not None}

    def _attach_images(self, deliveries: list[Delivery], fetched: list, batch: BatchEffects) -> list[Delivery]:
        """The deliveries with what was `fetched` for them (`_fetch_keys`). Kept pixels that
        are missing (a replay from a later stage, a dead-letter retry) are made up for with the
        image bytes (one MGET); deliveries whose bytes are gone are sorted out by `_without_bytes`."""
        if not fetched:
            return deliveries
        if getattr(self.stage, "takes_pixels", False):
            ready = [
                dataclasses.replace(d, pixels=cast(bytes, p)) for d, p in zip(deliveries, fetched) if p is not None
            ]
            without = [d for d, p in zip(deliveries, fetched) if p is None]
            if not without:
                return ready
            blobs = self.client.mget([names.blob_key(d.job["job_id"]) for d in without])
            return ready + self._with_bytes(without, blobs, batch)
        return self._with_bytes(deliveries, fetched, batch)

    def _with_bytes(self, deliveries: list[Delivery], blobs: list, batch: BatchEffects) -> list[Delivery]:
        """The deliveries with their image `blobs`, and those without, sorted out."""
        ready, missing = [], []
        for delivery, blob in zip(deliveries, blobs):
            if blob is None and delivery.job.get("error") is None:
                missing.append(delivery)
            else:
                # bytes: the runtime's client never decodes replies (streams/connection.py)
                ready.append(dataclasses.replace(delivery, image=cast("bytes | None", blob)))
        return ready + self._without_bytes(missing, batch)

    def _without_bytes(self, missing: list[Delivery], batch: BatchEffects) -> list[Delivery]:
        """Of deliveries whose image bytes are gone, those the stage is still handed.

        Bytes are released when a job finishes, so missing bytes of a job no longer in flight
        mean this delivery is a late duplicate of a finished job: it is acknowledged and dropped.
        Missing bytes of a job still in flight were purged or expired: a dead letter, except at
        the sink, which needs the bytes only for the picture."""
        if not missing:
            return []
        flying = self.client.smismember(names.INFLIGHT, [d.job["job_id"] for d in missing])
        handed = []
        for delivery, in_flight in zip(missing, flying):
            if not in_flight:
                self.log.info(
                    "entry.duplicate",
                    entry_id=delivery.entry_id,
                    image_id=delivery.job["image_id"],
                    note="job already finished",
                )
                batch.settle(delivery.entry_id, [])
            elif self.route.output_stream is None:
                handed.append(delivery)
            else:
                self._dead_letter(
                    batch,
                    delivery.entry_id,
                    delivery.attempt,
                    "ImageMissing",
                    f"image bytes of job {delivery.job['job_id']} are gone (purged or expired); "
                    "submit or replay the image again",
                    delivery.job,
                )
        return handed

    def _settle_forward(self, delivery: Delivery, outcome: Forward, batch: BatchEffects) -> None:
        """Forward the job as StreamConsumer does; the pixels it carries are kept under the job's
        pixels key by the same commit (so only while this consumer still holds the entry)."""
        settled = len(batch.settled)
        super()._settle_forward(delivery, outcome, batch)
        if outcome.pixels is not None and len(batch.settled) > settled:  # forwarded, not dead-lettered
            batch.settled[-1].commands.append(["SET", names.pixels_key(outcome.job["job_id"]), outcome.pixels])

    def _keep_since_s(self) -> float | None:
        """The images stream keeps its history for `faces replay --since`; the others none."""
        return self.settings.retention_s if self.route.input_stream == names.IMAGES else None

    def _error_to_report(self, outcome: Outcome) -> dict[str, Any] | None:
        """The error of a job that failed in this stage, or of an error result (the sink): worth
        a warning. A job that failed earlier and only passes through is not reported again."""
        error = getattr(outcome, "job", {}).get("error")
        if not isinstance(error, dict):
            return None
        if isinstance(outcome, Finish) or error.get("stage") == self.route.name:
            return error
        return None
