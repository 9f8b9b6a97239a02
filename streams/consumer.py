"""The consumer runtime: one stage, one consumer in its group, reading, handing batches to the
stage, and committing what it returns. The stage logic lives elsewhere; this loop only moves
entries and keeps the delivery guarantees:

- at-least-once: outputs and XACK in one owner-checked atomic step (streams/commit.py), so a
  consumer never forwards or acknowledges an entry another consumer has taken over;
- own pending entries are taken again first on start (after a crash of this consumer);
- entries idle longer than claim_idle_ms in other consumers are claimed (XAUTOCLAIM);
- a long batch renews its claim, and the claim of entries waiting for a retry, while alive;
- redelivered entries are processed one at a time: one of them may be what crashed a worker,
  and it must reach the dead letters alone, not with its batch-mates;
- a failing entry is retried with backoff, and after max_deliveries goes to the dead letters;
- a lost connection, and replies such as OOM or READONLY, are waited out with backoff; a group
  that vanished from a stream with history stops the worker (GroupLost) instead of silently
  reprocessing that history.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator, Sequence

import redis
import structlog

from faces.schemas import events
from faces.streams import commit as committing
from faces.streams import names, reading, trimming
from faces.streams.commit import CommitSettings, DeadLetterNote, EntryEffects
from faces.streams.groups import ensure_group, id_key, is_nogroup, is_transient
from faces.streams.outcomes import Delivery, Finish, Forward, Outcome, Reject, Stage
from faces.streams.reading import RawEntry
from faces.streams.settings import RuntimeSettings

log = structlog.get_logger(__name__)


class StageConsumer:
    """Runs one stage as consumer `consumer` of its group until stopped (or drained, in burst)."""

    def __init__(self, client: redis.Redis, stage: Stage, settings: RuntimeSettings, consumer: str):
        self.client = client
        self.stage = stage
        self.route = stage.route
        self.settings = settings
        self.consumer = consumer
        self.commit_settings = CommitSettings(
            max_event_bytes=settings.max_event_bytes, blob_ttl_s=settings.blob_ttl_s,
            result_ttl_s=settings.result_ttl_s)
        self._stop = threading.Event()
        self._retry_due: dict[str, float] = {}   # entry id -> monotonic time of next attempt
        self._last_error: dict[str, tuple[str, str]] = {}
        self._claim_cursor = "0-0"
        self._next_claim_at = 0.0
        self._next_trim_at = 0.0
        self._next_renew_at = 0.0
        self.processed = 0
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

    def _leave(self) -> None:
        """Remove this consumer from its group, but only if it holds nothing: pending entries
        of a deleted consumer would be acknowledged by nobody and lost to the claim logic."""
        try:
            if not reading.leave_if_empty(self.client, self.route.input_stream, self.route.group,
                                          self.consumer):
                self.log.info("consumer.left_pending", note="entries handed back for claiming")
        except redis.RedisError as exc:
            self.log.warning("consumer.leave_failed", error=str(exc))

    # -- reading ---------------------------------------------------------------------------
    def _schedule_own_pending(self) -> None:
        """Entries this consumer name held when it last stopped are retried first."""
        now = time.monotonic()
        for entry_id in reading.own_pending_ids(self.client, self.route.input_stream,
                                                self.route.group, self.consumer):
            self._retry_due.setdefault(entry_id, now)

    def _next_entries(self) -> list[RawEntry]:
        now = time.monotonic()
        due = [i for i, t in self._retry_due.items() if t <= now]
        if due:
            entry_id = min(due, key=id_key)  # one at a time (see the module docstring)
            del self._retry_due[entry_id]
            return reading.claim_own(self.client, self.route.input_stream, self.route.group,
                                     self.consumer, [entry_id])
        if now >= self._next_claim_at:
            self._claim_cursor, claimed = reading.autoclaim(
                self.client, self.route.input_stream, self.route.group, self.consumer,
                self.settings.claim_idle_ms, self._claim_cursor, self.settings.batch)
            # Keep sweeping at once while a dead consumer's entries are being taken over.
            self._next_claim_at = now if claimed else now + self.settings.claim_every_s
            if claimed:
                self.log.info("entries.claimed", count=len(claimed))
                return claimed
        block = self.settings.block_ms
        if self._retry_due:  # do not sleep past the next retry
            block = max(1, min(block, int((min(self._retry_due.values()) - now) * 1000)))
        return reading.read_new(self.client, self.route.input_stream, self.route.group,
                                self.consumer, self.settings.batch, block)

    # -- processing ------------------------------------------------------------------------
    def _process(self, entries: list[RawEntry]) -> None:
        started = time.perf_counter()
        payloads = {e.entry_id: e.payload for e in entries}
        effects: list[EntryEffects] = []
        dead: list[DeadLetterNote] = []
        deliveries: list[Delivery] = []
        for entry in entries:
            if entry.payload is None:
                # Deleted from the stream while pending: nobody owns it any more (7.x dropped it
                # from the pending list), so it is recorded and acknowledged unconditionally.
                note = self._note(entry.entry_id, entry.attempt, "EntryDeleted",
                                  "the entry was deleted from the stream while pending", None, None)
                effects.append(EntryEffects(entry.entry_id, self._dead_letter(note), require_owner=False))
                continue
            try:
                job = events.decode(entry.payload, self.settings.max_event_bytes)
            except events.EventError as exc:
                salvaged = events.salvage(entry.payload, names.blob_key, self.settings.max_event_bytes)
                dead.append(self._note(entry.entry_id, entry.attempt, "EventError", str(exc),
                                       entry.payload, salvaged, salvaged=salvaged is not None))
                continue
            if entry.attempt > self.settings.max_deliveries:
                last = self._last_error.pop(entry.entry_id, ("DeliveryLimit", "no error recorded"))
                # This read only dead-letters the entry: the stage was handed it attempt - 1 times,
                # the number the letter records and its message names.
                dead.append(self._note(entry.entry_id, entry.attempt - 1, last[0],
                                       f"gave up after {entry.attempt - 1} deliveries: {last[1]}",
                                       entry.payload, job))
                continue
            deliveries.append(Delivery(entry.entry_id, entry.attempt, job))
        deliveries = self._attach_images(deliveries, dead, effects, payloads)
        with self._renewing([d.entry_id for d in deliveries]):
            results = self._handle(deliveries)
        for delivery, outcome in results:
            commands = self._effects_of(delivery, outcome, dead, payloads)
            if commands is not None:
                effects.append(EntryEffects(delivery.entry_id, commands))
        effects.extend(EntryEffects(n.entry_id, self._dead_letter(n)) for n in dead)
        lost = committing.commit(self.client, self.route, self.consumer, effects)
        for effect in effects:  # finished, or taken over by another consumer: nothing to retry
            self._last_error.pop(effect.entry_id, None)
            self._retry_due.pop(effect.entry_id, None)
        if lost:
            self.log.warning("entries.taken_over", entry_ids=lost,
                             note="another consumer holds them now; our results were dropped")
        self._log_batch(results, dead, time.perf_counter() - started)

    def _effects_of(self, delivery: Delivery, outcome: Outcome, dead: list[DeadLetterNote],
                    payloads: dict[str, bytes | None]) -> list | None:
        """The commands of one handled delivery; None when it became a dead letter instead."""
        if isinstance(outcome, Reject):
            dead.append(self._note(delivery.entry_id, delivery.attempt, outcome.error_type,
                                   outcome.message, payloads[delivery.entry_id], delivery.job))
            return None
        if isinstance(outcome, Forward):
            try:
                return [committing.forward(self.route, events.encode(outcome.job, self.settings.max_event_bytes))]
            except events.EventError as exc:
                dead.append(self._note(delivery.entry_id, delivery.attempt, "EventError",
                                       str(exc), payloads[delivery.entry_id], delivery.job))
                return None
        if isinstance(outcome, Finish):
            return [committing.finish(outcome, self.commit_settings)]
        raise TypeError(f"unknown outcome {outcome!r}")

    def _dead_letter(self, note: DeadLetterNote) -> list[list]:
        return committing.dead_letter(self.route, note, self.commit_settings)

    def _attach_images(self, deliveries: list[Delivery], dead: list[DeadLetterNote],
                       effects: list[EntryEffects], payloads: dict[str, bytes | None]) -> list[Delivery]:
        """Fetch the claim-checked image bytes for stages that need pixels (one MGET).

        Bytes are released when a job finishes, so missing bytes of a job no longer in flight
        mean this delivery is a late duplicate of a finished job: it is acknowledged and dropped.
        Missing bytes of a job still in flight were purged or expired: a dead letter."""
        if not self.stage.needs_image or not deliveries:
            return deliveries
        blobs = self.client.mget([names.blob_key(d.job["job_id"]) for d in deliveries])
        ready, missing = [], []
        for delivery, blob in zip(deliveries, blobs):
            if blob is None and delivery.job.get("error") is None:
                missing.append(delivery)
            else:
                ready.append(Delivery(delivery.entry_id, delivery.attempt, delivery.job, blob))
        if missing:
            flying = self.client.smismember(names.INFLIGHT, [d.job["job_id"] for d in missing])
            for delivery, in_flight in zip(missing, flying):
                if not in_flight:
                    self.log.info("entry.duplicate", entry_id=delivery.entry_id,
                                  image_id=delivery.job["image_id"], note="job already finished")
                    effects.append(EntryEffects(delivery.entry_id, []))
                    continue
                if self.route.output_stream is None:
                    ready.append(delivery)  # the sink needs the bytes only for the picture
                    continue
                dead.append(self._note(
                    delivery.entry_id, delivery.attempt, "ImageMissing",
                    f"image bytes of job {delivery.job['job_id']} are gone (purged or expired); "
                    "submit or replay the image again", payloads[delivery.entry_id], delivery.job))
        return ready

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
            self.log.warning("batch.failed", error=repr(exc), size=len(deliveries),
                             note="retrying entries one by one")
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
        self.log.warning("entry.failed", image_id=delivery.job.get("image_id"),
                         entry_id=delivery.entry_id, attempt=delivery.attempt,
                         error_type=error[0], error=error[1])

    def _note(self, entry_id, attempt, error_type, message, payload, job, *, salvaged=False) -> DeadLetterNote:
        self.log.warning("entry.dead_lettered", entry_id=entry_id, attempt=attempt,
                         image_id=(job or {}).get("image_id"), error_type=error_type, error=message)
        return DeadLetterNote(entry_id, attempt, error_type, message, payload, job, salvaged)

    # -- keeping claims ----------------------------------------------------------------------
    def _renew(self, ids: list[str]) -> None:
        """Renew our claim on `ids`; forget those another consumer has taken over."""
        for entry_id in reading.renew_own(self.client, self.route.input_stream, self.route.group,
                                          self.consumer, ids):
            if self._retry_due.pop(entry_id, None) is not None:
                self._last_error.pop(entry_id, None)
                self.log.warning("entry.taken_over", entry_id=entry_id,
                                 note="another consumer holds it now; not retried here")

    @contextlib.contextmanager
    def _renewing(self, ids: list[str]) -> Iterator[None]:
        """While the stage works, renew the batch's claims and those of entries waiting for a
        retry, so that siblings see them as alive."""
        ids = ids + [i for i in list(self._retry_due) if i not in ids]
        if not ids:
            yield
            return
        done = threading.Event()

        def renew_loop() -> None:
            while not done.wait(self.settings.renew_every_s):
                try:
                    self._renew(ids)
                except redis.RedisError as exc:
                    self.log.warning("claim.renew_failed", error=str(exc))

        thread = threading.Thread(target=renew_loop, name="renew-claims", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    # -- background chores -------------------------------------------------------------------
    def _chores(self) -> None:
        """Trimming and renewing claims of entries waiting for a retry. A failed chore is
        logged and tried again next time; it never stops the worker."""
        now = time.monotonic()
        if self._retry_due and now >= self._next_renew_at:
            self._next_renew_at = now + self.settings.renew_every_s
            self._guarded("renew", lambda: self._renew(list(self._retry_due)))
        if now >= self._next_trim_at:
            self._next_trim_at = now + self.settings.trim_every_s
            keep_s = self.settings.retention_s if self.route.name == "detect" else None
            self._guarded("trim", lambda: trimming.trim_safely(
                self.client, self.route.input_stream, keep_since_s=keep_s))

    def _guarded(self, chore: str, action: Callable[[], object]) -> None:
        try:
            action()
        except redis.ResponseError as exc:
            self.log.warning("chore.failed", chore=chore, error=str(exc), note="tried again later")

    def _log_batch(self, results, dead, seconds: float) -> None:
        count = len(results) + len(dead)
        self.processed += count
        per_entry_ms = round(seconds * 1000 / max(count, 1), 2)
        for delivery, outcome in results:
            error = self._error_to_report(outcome)
            fields = {"image_id": delivery.job.get("image_id"), "entry_id": delivery.entry_id,
                      "attempt": delivery.attempt, "outcome": type(outcome).__name__.lower(),
                      "duration_ms": per_entry_ms, "batch": count}
            if error:
                self.log.warning("entry.processed", **fields, error_stage=error.get("stage"),
                                 error_type=error.get("type"), error=error.get("message"))
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
