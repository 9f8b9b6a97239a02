"""Generic stream delivery: one consumer in its group, reading entries, handing batches to a
handler, and committing what it returns. It knows nothing of images: what the pipeline adds
(image bytes, jobs in flight, the sink, held records) is in streams/consumer.py.

The delivery guarantees:

- at-least-once: outputs and XACK in one owner-checked atomic step (streams/commit.py), so a
  consumer never forwards or acknowledges an entry another consumer has taken over;
- own pending entries are taken again first on start (after a crash of this consumer);
- entries idle longer than claim_idle_ms in other consumers are claimed (XAUTOCLAIM) without
  counting a delivery, and each is counted when it is tried: the delivery limit counts attempts
  actually made, never one charged to an entry waiting behind another that hung or crashed;
- a long batch renews its claim, and the claim of entries waiting for a retry, while alive,
  but not past batch_limit_s: a handler call that hangs must not keep its entries from the
  siblings for ever (the worker process is then replaced: on_overrun);
- redelivered entries are processed one at a time: one of them may be what crashed a worker,
  and it must reach the dead letters alone, not with its batch-mates;
- a failing entry is retried with backoff, and after max_deliveries goes to the dead letters;
- a heartbeat key, renewed from this loop, says the consumer is consuming (streams/heartbeat.py);
- a lost connection, and replies such as OOM or READONLY (streams/transient.py), are waited out
  with backoff; a group that vanished from a stream with history stops the worker (GroupLost)
  instead of silently reprocessing that history.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import redis
import structlog

from faces.schemas import events
from faces.schemas.job import Job
from faces.streams import commit as committing
from faces.streams import heartbeat, reading, trimming
from faces.streams.commit import BatchEffects, CommitSettings, DeadLetterNote
from faces.streams.groups import ensure_group, is_nogroup
from faces.streams.outcomes import Delivery, Finish, Forward, Outcome, Reject, Stage
from faces.streams.reading import RawEntry
from faces.streams.retries import RetrySchedule
from faces.streams.settings import RuntimeSettings
from faces.streams.transient import Backoff, is_transient

log = structlog.get_logger(__name__)

Handled = list[tuple[Delivery, Outcome]]


@dataclasses.dataclass
class ConsumerCounters:
    """What this consumer handled since it started (the worker's metrics read them)."""

    processed: int = 0  # entries settled: forwarded, finished or dead-lettered
    errors: int = 0  # of those, error results that arose in this stage (or, at the sink, all)
    dead_letters: int = 0  # of those, dead-lettered
    batches: int = 0


class StreamConsumer:
    """Delivers `stage.route`'s input stream to `stage.handle` as consumer `consumer` of its
    group until stopped (or drained, in burst). Subclasses add what a pipeline needs through
    the hooks `_triage`, `_jobs_of_deleted`, `_keep_since_s` and `_error_to_report`."""

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
        self.retries = RetrySchedule(settings.retry_backoff_s, settings.max_deliveries)
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

    @property
    def processed(self) -> int:
        return self.counters.processed

    def run(self) -> None:
        """The consume loop, with reconnects. Returns on stop, or when drained in burst mode.
        Raises GroupLost when the group vanished from a stream with history."""
        backoff = Backoff(self.settings.reconnect_min_s, self.settings.reconnect_max_s)
        while not self._stop.is_set():
            try:
                ensure_group(self.client, self.route.input_stream, self.route.group)
                self._schedule_own_pending()
                backoff.reset()
                if self._consume_until_stopped():
                    break  # burst mode: drained
            except redis.ResponseError as exc:
                if is_nogroup(exc):
                    # ensure_group, next time round, re-creates a group that was never made,
                    # or raises GroupLost for one that was lost.
                    self.log.warning("group.missing", error=str(exc))
                elif is_transient(exc):
                    self._wait_out("redis.refusing", exc, backoff)
                else:
                    raise
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._wait_out("redis.unavailable", exc, backoff)
        self._leave()

    def _wait_out(self, event: str, exc: Exception, backoff: Backoff) -> None:
        delay = backoff.next()
        self.log.warning(event, error=str(exc), retry_in_s=delay)
        self._stop.wait(delay)

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
            elif self.settings.burst and not self.retries:
                return True
            self._chores()
        return False

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
        for entry_id in reading.own_pending_ids(self.client, self.route.input_stream, self.route.group, self.consumer):
            self.retries.take_now(entry_id)

    def _next_entries(self) -> list[RawEntry]:
        now = time.monotonic()
        stream, group = self.route.input_stream, self.route.group
        entry_id = self.retries.pop_due(now)
        if entry_id is None and now >= self._next_claim_at:
            deleted = self._take_over_idle(now)
            if deleted:
                return deleted
            entry_id = self.retries.pop_due(time.monotonic())  # the first of those taken, if any
        if entry_id is not None:
            return reading.claim_own(self.client, stream, group, self.consumer, [entry_id])
        block_ms = self.retries.block_ms(now, self.settings.block_ms)
        return reading.read_new(self.client, stream, group, self.consumer, self.settings.batch, block_ms)

    def _take_over_idle(self, now: float) -> list[RawEntry]:
        """Take over entries idle in other consumers (dead, or past --batch-limit-s). They join
        the retries, due now, and are tried one at a time, each delivery counted only when it is
        tried (reading.autoclaim): good entries held behind one that hangs are not charged its
        attempts. Returns those found deleted from the stream while pending, to settle now."""
        self._claim_cursor, taken, deleted = reading.autoclaim(
            self.client,
            self.route.input_stream,
            self.route.group,
            self.consumer,
            self.settings.claim_idle_ms,
            self._claim_cursor,
            self.settings.batch,
        )
        # Keep sweeping at once while a dead consumer's entries are being taken over.
        self._next_claim_at = now if taken or deleted else now + self.settings.claim_every_s
        if taken or deleted:
            self.log.info("entries.claimed", count=len(taken) + len(deleted))
        for entry_id in taken:
            self.retries.take_now(entry_id)
        return deleted

    # -- processing ------------------------------------------------------------------------
    def _process(self, entries: list[RawEntry]) -> None:
        """One batch, step by step. Each step records what its entries cause in one
        BatchEffects, committed at the end in one owner-checked step with the acknowledgements."""
        started = time.perf_counter()
        batch = BatchEffects({e.entry_id: e.payload for e in entries})
        deliveries = self._triage(entries, batch)
        handled = self._handle_renewing(deliveries)
        for delivery, outcome in handled:
            self._settle_outcome(delivery, outcome, batch)
        self._commit(batch)
        self._log_batch(handled, batch.dead, time.perf_counter() - started)

    def _triage(self, entries: list[RawEntry], batch: BatchEffects) -> list[Delivery]:
        """The entries the stage may be handed; the others are settled or dead-lettered now."""
        deleted = [e for e in entries if e.payload is None]
        jobs = self._jobs_of_deleted([e.entry_id for e in deleted]) if deleted else {}
        for entry in deleted:
            self._settle_deleted(entry, batch, jobs.get(entry.entry_id))
        return [
            d for e in entries if e.payload is not None and (d := self._deliverable(e, e.payload, batch)) is not None
        ]

    def _jobs_of_deleted(self, entry_ids: list[str]) -> dict[str, Job]:
        """The jobs of entries deleted from the stream while pending, where they are known."""
        return {}

    def _settle_deleted(self, entry: RawEntry, batch: BatchEffects, job: Job | None) -> None:
        """Deleted from the stream while pending: nobody owns it any more (7.x dropped it from
        the pending list), so it is recorded and acknowledged without the owner check. A known
        `job` gets an error result, which releases its in-flight slot and bytes; without one
        only the letter is written."""
        note = self._dead_letter(
            batch,
            entry.entry_id,
            entry.attempt,
            "EntryDeleted",
            "the entry was deleted from the stream while pending",
            job,
            salvaged=job is not None,
            at_commit=False,
        )
        batch.settle(
            entry.entry_id, committing.dead_letter(self.route, note, self.commit_settings), require_owner=False
        )

    def _deliverable(self, entry: RawEntry, payload: bytes, batch: BatchEffects) -> Delivery | None:
        """The entry (its `payload` read) as a delivery for the stage; None when dead-lettered."""
        try:
            job = events.decode(payload, self.settings.max_event_bytes)
        except events.EventError as exc:
            self._dead_letter_undecodable(entry, payload, exc, batch)
            return None
        if entry.attempt > self.settings.max_deliveries:
            self._dead_letter_exhausted(entry, job, batch)
            return None
        return Delivery(entry.entry_id, entry.attempt, job)

    def _dead_letter_undecodable(
        self, entry: RawEntry, payload: bytes, exc: events.EventError, batch: BatchEffects
    ) -> None:
        """Not a valid event. One that still names its job and image (a newer release's event,
        a damaged field) is salvaged, so that its image gets an error result."""
        salvaged = events.salvage(payload, self.settings.max_event_bytes)
        self._dead_letter(
            batch, entry.entry_id, entry.attempt, "EventError", str(exc), salvaged, salvaged=salvaged is not None
        )

    def _dead_letter_exhausted(self, entry: RawEntry, job: Job, batch: BatchEffects) -> None:
        """Delivered more than max_deliveries times: dead-lettered with its last error. This read
        only dead-letters the entry: the stage was handed it attempt - 1 times, the number the
        letter records and its message names."""
        error_type, message = self.retries.pop_last_error(entry.entry_id) or (
            "DeliveryLimit",
            "no error recorded (the workers handed it died, or ran past --batch-limit-s)",
        )
        handed = entry.attempt - 1
        self._dead_letter(
            batch, entry.entry_id, handed, error_type, f"gave up after {handed} deliveries: {message}", job
        )

    def _handle_renewing(self, deliveries: list[Delivery]) -> Handled:
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
            self.retries.forget(entry_id)
        if lost:
            self.log.warning(
                "entries.taken_over", entry_ids=lost, note="another consumer holds them now; our results were dropped"
            )

    def _handle(self, deliveries: list[Delivery]) -> Handled:
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
        done: Handled = []
        for delivery in deliveries:
            try:
                done.extend(self._checked([delivery], self.stage.handle([delivery])))
            except Exception as exc:  # noqa: BLE001 - same as above, for a single entry
                self._failed(delivery, exc)
        return done

    @staticmethod
    def _checked(deliveries: Sequence[Delivery], outcomes: list[Outcome]) -> Handled:
        if len(outcomes) != len(deliveries):
            raise RuntimeError(f"stage returned {len(outcomes)} outcomes for {len(deliveries)} deliveries")
        return list(zip(deliveries, outcomes))

    def _failed(self, delivery: Delivery, exc: Exception) -> None:
        error = (type(exc).__name__, str(exc) or repr(exc))
        # At the last delivery allowed the retry is due at once: it only dead-letters the entry.
        self.retries.failed(delivery.entry_id, delivery.attempt, error)
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
        job: Job | None,
        *,
        salvaged: bool = False,
        at_commit: bool = True,
    ) -> DeadLetterNote:
        """The entry's dead letter, logged now with its reason; written at commit with the
        batch's others, or (`at_commit=False`) by the caller, which settles the entry itself."""
        self.log.warning(
            "entry.dead_lettered",
            entry_id=entry_id,
            attempt=attempt,
            image_id=job["image_id"] if job is not None else None,
            error_type=error_type,
            error=message,
        )
        note = DeadLetterNote(entry_id, attempt, error_type, message, batch.payloads[entry_id], job, salvaged)
        if at_commit:
            batch.dead.append(note)
        return note

    # -- keeping claims ----------------------------------------------------------------------
    def _renew(self, ids: list[str]) -> None:
        """Renew our claim on `ids`; forget those another consumer has taken over."""
        for entry_id in reading.renew_own(self.client, self.route.input_stream, self.route.group, self.consumer, ids):
            if entry_id in self.retries.due:
                self.retries.forget(entry_id)
                self.log.warning(
                    "entry.taken_over", entry_id=entry_id, note="another consumer holds it now; not retried here"
                )

    @contextlib.contextmanager
    def _renewing(self, batch: list[str]) -> Iterator[None]:
        """While the stage works, renew the batch's claims and those of entries waiting for a
        retry, so that siblings see them as alive; up to settings.batch_limit_s only."""
        ids = batch + [i for i in self.retries.ids() if i not in batch]
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
        if self.retries and now >= self._next_renew_at:
            self._next_renew_at = now + self.settings.renew_every_s
            self._guarded("renew", lambda: self._renew(self.retries.ids()))
        if now >= self._next_trim_at:
            self._next_trim_at = now + self.settings.trim_every_s
            keep_s = self._keep_since_s()
            self._guarded(
                "trim", lambda: trimming.trim_safely(self.client, self.route.input_stream, keep_since_s=keep_s)
            )

    def _keep_since_s(self) -> float | None:
        """How many seconds of acknowledged history trimming keeps on the input (None: none)."""
        return None

    def _beat(self) -> None:
        self._heartbeat.beat_if_due(lambda: dataclasses.asdict(self.counters))

    def _guarded(self, chore: str, action: Callable[[], object]) -> None:
        try:
            action()
        except redis.ResponseError as exc:
            self.log.warning("chore.failed", chore=chore, error=str(exc), note="tried again later")

    def _log_batch(self, results: Handled, dead: list[DeadLetterNote], seconds: float) -> None:
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

    def _error_to_report(self, outcome: Outcome) -> dict[str, Any] | None:
        """An error the outcome carries that is worth a warning (None: nothing to report)."""
        return None
