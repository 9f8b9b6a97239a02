"""The consumer runtime: one stage, one consumer in its group, reading, handing batches to the
stage, and committing what it returns. The stage logic lives elsewhere; this loop only moves
entries and keeps the delivery guarantees:

- at-least-once: outputs and XACK in one owner-checked atomic step (streams/commit.py), so a
  consumer never forwards or acknowledges an entry another consumer has taken over;
- own pending entries are taken again first on start (after a crash of this consumer);
- entries idle longer than claim_idle_ms in other consumers are claimed (XAUTOCLAIM);
- a long batch renews its claim, and the claim of entries waiting for a retry, while alive,
  but not past batch_limit_s: a stage call that hangs must not keep its entries from the
  siblings for ever (the worker process is then replaced: on_overrun);
- redelivered entries are processed one at a time: one of them may be what crashed a worker,
  and it must reach the dead letters alone, not with its batch-mates;
- a failing entry is retried with backoff, and after max_deliveries goes to the dead letters;
- a heartbeat key, renewed from this loop, says the consumer is consuming (streams/heartbeat.py);
- a lost connection, and replies such as OOM or READONLY, are waited out with backoff; a group
  that vanished from a stream with history stops the worker (GroupLost) instead of silently
  reprocessing that history.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from typing import Callable, Iterator, Sequence

import redis
import structlog

from faces.schemas import events
from faces.streams import commit as committing
from faces.streams import heartbeat, names, reading, trimming
from faces.streams.commit import BatchEffects, CommitSettings, DeadLetterNote
from faces.streams.groups import ensure_group, id_key, is_nogroup, is_transient
from faces.streams.outcomes import Delivery, Finish, Forward, Outcome, Reject, Stage
from faces.streams.reading import RawEntry
from faces.streams.settings import RuntimeSettings

log = structlog.get_logger(__name__)


@dataclasses.dataclass
class ConsumerCounters:
    """What this consumer handled since it started (the worker's metrics read them)."""

    processed: int = 0  # entries settled: forwarded, finished or dead-lettered
    errors: int = 0  # of those, error results that arose in this stage (or, at the sink, all)
    dead_letters: int = 0  # of those, dead-lettered
    batches: int = 0


class StageConsumer:
    """Runs one stage as consumer `consumer` of its group until stopped (or drained, in burst)."""

    def __init__(
        self,
        client: redis.Redis,
        stage: Stage,
        settings: RuntimeSettings,
        consumer: str,
        on_overrun: Callable[[], None] | None = None,
    ):
        """`on_overrun` is called (from the renewal thread) once a batch ran past
        settings.batch_limit_s; the worker process exits there, its stage call may never return."""
        self.client = client
        self.stage = stage
        self.route = stage.route
        self.settings = settings
        self.consumer = consumer
        self.commit_settings = CommitSettings(
            max_event_bytes=settings.max_event_bytes, blob_ttl_s=settings.blob_ttl_s, result_ttl_s=settings.result_ttl_s
        )
        self._stop = threading.Event()
        self._retry_due: dict[str, float] = {}  # entry id -> monotonic time of next attempt
        self._last_error: dict[str, tuple[str, str]] = {}
        self._claim_cursor = "0-0"
        self._next_claim_at = 0.0
        self._next_trim_at = 0.0
        self._next_renew_at = 0.0
        self._heartbeat = heartbeat.Heartbeat(client, self.route.name, consumer, settings.heartbeat_every_s)
        self._on_overrun = on_overrun
        self.counters = ConsumerCounters()
        self.log = log.bind(stage=self.route.name, consumer=consumer)

    # -- lifecycle -------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop after the batch in hand (safe to call from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """The consume loop, with reconnects. Returns on stop, or when drained in burst mode.
        Raises GroupLost when the group vanished from a stream with history."""
        backoff = self.settings.reconnect_min_s
        while not self._stop.is_set():
            try:
                ensure_group(self.client, self.route.input_stream, self.route.group)
                self._schedule_own_pending()
                backoff = self.settings.reconnect_min_s
                if self._consume_until_stopped():
                    break  # burst mode: drained
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                backoff = self._wait_out("redis.unavailable", exc, backoff)
            except redis.ResponseError as exc:
                if is_nogroup(exc):
                    # ensure_group, next time round, re-creates a group that was never made,
                    # or raises GroupLost for one that was lost.
                    self.log.warning("group.missing", error=str(exc))
                elif is_transient(exc):
                    backoff = self._wait_out("redis.refusing", exc, backoff)
                else:
                    raise
        self._leave()

    def _wait_out(self, event: str, exc: Exception, backoff: float) -> float:
        self.log.warning(event, error=str(exc), retry_in_s=backoff)
        self._stop.wait(backoff)
        return min(backoff * 2, self.settings.reconnect_max_s)

    def _consume_until_stopped(self) -> bool:
        while not self._stop.is_set():
            entries = self._next_entries()
            if any(e.attempt > 1 for e in entries):
                for entry in entries:  # redeliveries alone: any of them may crash the worker
                    if self._stop.is_set():
                        break  # the rest stay pending under our name, for us or a sibling
                    self._process([entry])
            elif entries:
                self._process(entries)
            elif self.settings.burst and not self._retry_due:
                return True
            self._chores()
        return False

    @property
    def processed(self) -> int:
        return self.counters.processed

    def _leave(self) -> None:
        """Remove this consumer from its group, but only if it holds nothing: pending entries
        of a deleted consumer would be acknowledged by nobody and lost to the claim logic."""
        try:
            self._heartbeat.forget()
            if not reading.leave_if_empty(self.client, self.route.input_stream, self.route.group, self.consumer):
                self.log.info("consumer.left_pending", note="entries handed back for claiming")
        except redis.RedisError as exc:
            self.log.warning("consumer.leave_failed", error=str(exc))

    # -- reading ---------------------------------------------------------------------------
    def _schedule_own_pending(self) -> None:
        """Entries this consumer name held when it last stopped are retried first."""
        now = time.monotonic()
        for entry_id in reading.own_pending_ids(self.client, self.route.input_stream, self.route.group, self.consumer):
            self._retry_due.setdefault(entry_id, now)

    def _next_entries(self) -> list[RawEntry]:
        now = time.monotonic()
        due = [i for i, t in self._retry_due.items() if t <= now]
        if due:
            entry_id = min(due, key=id_key)  # one at a time (see the module docstring)
            del self._retry_due[entry_id]
            return reading.claim_own(self.client, self.route.input_stream, self.route.group, self.consumer, [entry_id])
        if now >= self._next_claim_at:
            self._claim_cursor, claimed = reading.autoclaim(
                self.client,
                self.route.input_stream,
                self.route.group,
                self.consumer,
                self.settings.claim_idle_ms,
                self._claim_cursor,
                self.settings.batch,
            )
            # Keep sweeping at once while a dead consumer's entries are being taken over.
            self._next_claim_at = now if claimed else now + self.settings.claim_every_s
            if claimed:
                self.log.info("entries.claimed", count=len(claimed))
                return claimed
        block = self.settings.block_ms
        if self._retry_due:  # do not sleep past the next retry
            block = max(1, min(block, int((min(self._retry_due.values()) - now) * 1000)))
        return reading.read_new(
            self.client, self.route.input_stream, self.route.group, self.consumer, self.settings.batch, block
        )

    # -- processing ------------------------------------------------------------------------
    def _process(self, entries: list[RawEntry]) -> None:
        """One batch, step by step. Each step records what its entries cause in one
        BatchEffects, committed at the end in one owner-checked step with the acknowledgements."""
        started = time.perf_counter()
        batch = BatchEffects({e.entry_id: e.payload for e in entries})
        deliveries = self._triage(entries, batch)
        deliveries = self._attach_images(deliveries, batch)
        handled = self._handle_renewing(deliveries)
        for delivery, outcome in handled:
            self._settle_outcome(delivery, outcome, batch)
        self._commit(batch)
        self._log_batch(handled, batch.dead, time.perf_counter() - started)

    def _triage(self, entries: list[RawEntry], batch: BatchEffects) -> list[Delivery]:
        """The entries the stage may be handed, their jobs recorded as held (should the entry be
        deleted from the stream while pending); the others are settled or dead-lettered now."""
        stream = self.route.input_stream
        known = reading.held(self.client, stream, [e.entry_id for e in entries if e.payload is None])
        deliveries = [d for e in entries if (d := self._deliverable(e, batch, known)) is not None]
        reading.hold(self.client, stream, {d.entry_id: reading.held_record(d.job) for d in deliveries})
        return deliveries

    def _deliverable(self, entry: RawEntry, batch: BatchEffects, known: dict[str, bytes]) -> Delivery | None:
        """The entry as a delivery for the stage; None when it was settled or dead-lettered.
        `known`: the held records of entries deleted from the stream."""
        if entry.payload is None:
            self._settle_deleted(entry, batch, known.get(entry.entry_id))
            return None
        try:
            job = events.decode(entry.payload, self.settings.max_event_bytes)
        except events.EventError as exc:
            self._dead_letter_undecodable(entry, exc, batch)
            return None
        if entry.attempt > self.settings.max_deliveries:
            self._dead_letter_exhausted(entry, job, batch)
            return None
        return Delivery(entry.entry_id, entry.attempt, job)

    def _settle_deleted(self, entry: RawEntry, batch: BatchEffects, record: bytes | None) -> None:
        """Deleted from the stream while pending: nobody owns it any more (7.x dropped it from
        the pending list), so it is recorded and acknowledged without the owner check. Its job,
        rebuilt from the `record` kept when a consumer took it (reading.hold), gets an error
        result, which releases its in-flight slot and bytes; without a record (taken by a
        release that kept none) only the letter is written."""
        job = events.salvage(record, self.settings.max_event_bytes) if record is not None else None
        note = self._note(
            batch,
            entry.entry_id,
            entry.attempt,
            "EntryDeleted",
            "the entry was deleted from the stream while pending",
            job,
            salvaged=job is not None,
        )
        batch.settle(
            entry.entry_id, committing.dead_letter(self.route, note, self.commit_settings), require_owner=False
        )

    def _dead_letter_undecodable(self, entry: RawEntry, exc: events.EventError, batch: BatchEffects) -> None:
        """Not a valid event. One that still names its job and image (a newer release's event,
        a damaged field) is salvaged, so that its image gets an error result."""
        salvaged = events.salvage(entry.payload, self.settings.max_event_bytes)
        self._dead_letter(
            batch, entry.entry_id, entry.attempt, "EventError", str(exc), salvaged, salvaged=salvaged is not None
        )

    def _dead_letter_exhausted(self, entry: RawEntry, job: dict, batch: BatchEffects) -> None:
        """Delivered more than max_deliveries times: dead-lettered with its last error. This read
        only dead-letters the entry: the stage was handed it attempt - 1 times, the number the
        letter records and its message names."""
        error_type, message = self._last_error.pop(
            entry.entry_id,
            ("DeliveryLimit", "no error recorded (the workers handed it died, or ran past --batch-limit-s)"),
        )
        handed = entry.attempt - 1
        self._dead_letter(
            batch, entry.entry_id, handed, error_type, f"gave up after {handed} deliveries: {message}", job
        )

    def _attach_images(self, deliveries: list[Delivery], batch: BatchEffects) -> list[Delivery]:
        """Fetch the claim-checked image bytes for stages that need pixels (one MGET); the
        deliveries whose bytes are gone are sorted out by `_without_bytes`."""
        if not self.stage.needs_image or not deliveries:
            return deliveries
        blobs = self.client.mget([names.blob_key(d.job["job_id"]) for d in deliveries])
        ready, missing = [], []
        for delivery, blob in zip(deliveries, blobs):
            if blob is None and delivery.job.get("error") is None:
                missing.append(delivery)
            else:
                ready.append(dataclasses.replace(delivery, image=blob))
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

    def _handle_renewing(self, deliveries: list[Delivery]) -> list[tuple[Delivery, Outcome]]:
        """Run the stage while keeping the claims of the batch, and of entries waiting for a
        retry, alive."""
        with self._renewing([d.entry_id for d in deliveries]):
            return self._handle(deliveries)

    def _settle_outcome(self, delivery: Delivery, outcome: Outcome, batch: BatchEffects) -> None:
        """Record what one handled delivery causes: a forward, a finish or a dead letter."""
        if isinstance(outcome, Reject):
            self._dead_letter(
                batch, delivery.entry_id, delivery.attempt, outcome.error_type, outcome.message, delivery.job
            )
        elif isinstance(outcome, Forward):
            self._settle_forward(delivery, outcome, batch)
        elif isinstance(outcome, Finish):
            batch.settle(delivery.entry_id, [committing.finish(outcome, self.commit_settings)])
        else:
            raise TypeError(f"unknown outcome {outcome!r}")

    def _settle_forward(self, delivery: Delivery, outcome: Forward, batch: BatchEffects) -> None:
        """Forward the updated job; one the stage made invalid or too large is dead-lettered."""
        try:
            payload = events.encode(outcome.job, self.settings.max_event_bytes)
        except events.EventError as exc:
            self._dead_letter(batch, delivery.entry_id, delivery.attempt, "EventError", str(exc), delivery.job)
            return
        batch.settle(delivery.entry_id, [committing.forward(self.route, payload)])

    def _commit(self, batch: BatchEffects) -> None:
        """Apply the batch's effects in one owner-checked step. Its entries are finished, or
        taken over by another consumer: none of them is retried here."""
        lost = committing.commit_batch(self.client, self.route, self.consumer, batch, self.commit_settings)
        for entry_id in batch.entry_ids:
            self._last_error.pop(entry_id, None)
            self._retry_due.pop(entry_id, None)
        if lost:
            self.log.warning(
                "entries.taken_over", entry_ids=lost, note="another consumer holds them now; our results were dropped"
            )

    def _handle(self, deliveries: list[Delivery]) -> list[tuple[Delivery, Outcome]]:
        """Run the stage; if the batch fails, run each delivery alone so that one poison entry
        does not hold back its siblings. Failed deliveries stay pending for a retry."""
        if not deliveries:
            return []
        try:
            return self._checked(deliveries, self.stage.handle(deliveries))
        except Exception as exc:  # noqa: BLE001 - any stage failure must become a retry, not a crash
            if len(deliveries) == 1:
                self._failed(deliveries[0], exc)
                return []
            self.log.warning("batch.failed", error=repr(exc), size=len(deliveries), note="retrying entries one by one")
        done: list[tuple[Delivery, Outcome]] = []
        for delivery in deliveries:
            try:
                done.extend(self._checked([delivery], self.stage.handle([delivery])))
            except Exception as exc:  # noqa: BLE001 - same as above, for a single entry
                self._failed(delivery, exc)
        return done

    def _checked(self, deliveries: Sequence[Delivery], outcomes: list[Outcome]):
        if len(outcomes) != len(deliveries):
            raise RuntimeError(f"stage returned {len(outcomes)} outcomes for {len(deliveries)} deliveries")
        return list(zip(deliveries, outcomes))

    def _failed(self, delivery: Delivery, exc: Exception) -> None:
        error = (type(exc).__name__, str(exc) or repr(exc))
        self._last_error[delivery.entry_id] = error
        if delivery.attempt >= self.settings.max_deliveries:
            # Dead-letter now rather than waiting for one more delivery we know is the last.
            self._retry_due[delivery.entry_id] = time.monotonic()
        else:
            delay = self.settings.retry_backoff_s * (2 ** (delivery.attempt - 1))
            self._retry_due[delivery.entry_id] = time.monotonic() + delay
        self.log.warning(
            "entry.failed",
            image_id=delivery.job.get("image_id"),
            entry_id=delivery.entry_id,
            attempt=delivery.attempt,
            error_type=error[0],
            error=error[1],
        )

    def _dead_letter(
        self,
        batch: BatchEffects,
        entry_id: str,
        attempt: int,
        error_type: str,
        message: str,
        job: dict | None,
        *,
        salvaged: bool = False,
    ) -> None:
        """Send the entry to the dead letters, written at commit."""
        batch.dead.append(self._note(batch, entry_id, attempt, error_type, message, job, salvaged=salvaged))

    def _note(
        self,
        batch: BatchEffects,
        entry_id: str,
        attempt: int,
        error_type: str,
        message: str,
        job: dict | None,
        *,
        salvaged: bool = False,
    ) -> DeadLetterNote:
        """The entry's dead letter, logged now with its reason; written at commit."""
        self.log.warning(
            "entry.dead_lettered",
            entry_id=entry_id,
            attempt=attempt,
            image_id=(job or {}).get("image_id"),
            error_type=error_type,
            error=message,
        )
        return DeadLetterNote(entry_id, attempt, error_type, message, batch.payloads[entry_id], job, salvaged)

    # -- keeping claims ----------------------------------------------------------------------
    def _renew(self, ids: list[str]) -> None:
        """Renew our claim on `ids`; forget those another consumer has taken over."""
        for entry_id in reading.renew_own(self.client, self.route.input_stream, self.route.group, self.consumer, ids):
            if self._retry_due.pop(entry_id, None) is not None:
                self._last_error.pop(entry_id, None)
                self.log.warning(
                    "entry.taken_over", entry_id=entry_id, note="another consumer holds it now; not retried here"
                )

    @contextlib.contextmanager
    def _renewing(self, batch: list[str]) -> Iterator[None]:
        """While the stage works, renew the batch's claims and those of entries waiting for a
        retry, so that siblings see them as alive; up to settings.batch_limit_s only."""
        ids = batch + [i for i in list(self._retry_due) if i not in batch]
        if not ids:
            yield
            return
        done = threading.Event()
        deadline = time.monotonic() + self.settings.batch_limit_s

        def renew_loop() -> None:
            while not done.wait(min(self.settings.renew_every_s, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    self._overran(batch)
                    return
                try:
                    self._renew(ids)
                except redis.RedisError as exc:
                    self.log.warning("claim.renew_failed", error=str(exc))
                # A long batch is not a stuck worker until batch_limit_s: keep the heartbeat
                # fresh meanwhile (it goes stale after HEARTBEAT_STALE_S, well below the limit).
                self._guarded("heartbeat", self._beat)

        thread = threading.Thread(target=renew_loop, name="renew-claims", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _overran(self, batch: list[str]) -> None:
        """The stage call ran past batch_limit_s: taken for hung. Its claims are no longer
        renewed, so siblings (or this consumer name, restarted) take its entries after
        claim_idle_ms, and an entry that hangs every time reaches the dead letters after
        max_deliveries. Should the call return after all, the owner-checked commit drops what
        was taken over."""
        limit_s = self.settings.batch_limit_s
        self.log.error(
            "batch.over_limit",
            entry_ids=batch,
            limit_s=limit_s,
            error=f"a batch ran past --batch-limit-s ({limit_s:g} s): its stage call "
            "seems hung; its entries are left to the other workers",
        )
        if self._on_overrun is not None:
            self._on_overrun()

    # -- background chores -------------------------------------------------------------------
    def _chores(self) -> None:
        """The heartbeat, trimming and renewing claims of entries waiting for a retry. A failed
        chore is logged and tried again next time; it never stops the worker."""
        now = time.monotonic()
        self._guarded("heartbeat", self._beat)
        if self._retry_due and now >= self._next_renew_at:
            self._next_renew_at = now + self.settings.renew_every_s
            self._guarded("renew", lambda: self._renew(list(self._retry_due)))
        if now >= self._next_trim_at:
            self._next_trim_at = now + self.settings.trim_every_s
            keep_s = self.settings.retention_s if self.route.name == "detect" else None
            self._guarded(
                "trim", lambda: trimming.trim_safely(self.client, self.route.input_stream, keep_since_s=keep_s)
            )

    def _beat(self) -> None:
        self._heartbeat.beat_if_due(lambda: dataclasses.asdict(self.counters))

    def _guarded(self, chore: str, action: Callable[[], object]) -> None:
        try:
            action()
        except redis.ResponseError as exc:
            self.log.warning("chore.failed", chore=chore, error=str(exc), note="tried again later")

    def _log_batch(self, results, dead, seconds: float) -> None:
        count = len(results) + len(dead)
        self.counters.processed += count
        self.counters.dead_letters += len(dead)
        self.counters.batches += 1
        per_entry_ms = round(seconds * 1000 / max(count, 1), 2)
        for delivery, outcome in results:
            error = self._error_to_report(outcome)
            fields = {
                "image_id": delivery.job.get("image_id"),
                "entry_id": delivery.entry_id,
                "attempt": delivery.attempt,
                "outcome": type(outcome).__name__.lower(),
                "duration_ms": per_entry_ms,
                "batch": count,
            }
            if error:
                self.counters.errors += 1
                self.log.warning(
                    "entry.processed",
                    **fields,
                    error_stage=error.get("stage"),
                    error_type=error.get("type"),
                    error=error.get("message"),
                )
            else:
                self.log.info("entry.processed", **fields)

    def _error_to_report(self, outcome: Outcome) -> dict | None:
        """The error of a job that failed in this stage, or of an error result (the sink): worth
        a warning. A job that failed earlier and only passes through is not reported again."""
        error = getattr(outcome, "job", {}).get("error")
        if not isinstance(error, dict):
            return None
        if isinstance(outcome, Finish) or error.get("stage") == self.route.name:
            return error
        return None
