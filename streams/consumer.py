"""The consumer runtime: one stage, one consumer in its group, reading, handing batches to the
stage, and committing what it returns. The stage logic lives elsewhere; this loop only moves
entries and keeps the delivery guarantees:

- at-least-once: outputs and XACK in one MULTI/EXEC (streams/commit.py);
- own pending entries are taken again first on start (after a crash of this consumer);
- entries idle longer than claim_idle_ms in other consumers are claimed (XAUTOCLAIM);
- a long batch renews its claim so it is not stolen while alive;
- a failing entry is retried with backoff, and after max_deliveries goes to the dead letters;
- a lost connection is retried with backoff; a lost group (NOGROUP) is created again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator, Sequence

import redis
import structlog

from schemas import events
from streams import commit as committing
from streams import reading, trimming
from streams.groups import ensure_group, id_key, is_nogroup
from streams.outcomes import Delivery, Finish, Forward, Outcome, Reject, Stage
from streams.reading import RawEntry
from streams.settings import RuntimeSettings

log = structlog.get_logger(__name__)


class StageConsumer:
    """Runs one stage as consumer `consumer` of its group until stopped (or drained, in burst)."""

    def __init__(self, client: redis.Redis, stage: Stage, settings: RuntimeSettings, consumer: str):
        self.client = client
        self.stage = stage
        self.route = stage.route
        self.settings = settings
        self.consumer = consumer
        self._stop = threading.Event()
        self._retry_due: dict[str, float] = {}   # entry id -> monotonic time of next attempt
        self._last_error: dict[str, tuple[str, str]] = {}
        self._claim_cursor = "0-0"
        self._next_claim_at = 0.0
        self._next_trim_at = 0.0
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
        """The consume loop, with reconnects. Returns on stop, or when drained in burst mode."""
        backoff = self.settings.reconnect_min_s
        while not self._stop.is_set():
            try:
                ensure_group(self.client, self.route.input_stream, self.route.group)
                self._schedule_own_pending()
                backoff = self.settings.reconnect_min_s
                if self._consume_until_stopped():
                    break  # burst mode: drained
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self.log.warning("redis.unavailable", error=str(exc), retry_in_s=backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.reconnect_max_s)
            except redis.ResponseError as exc:
                if not is_nogroup(exc):
                    raise
                # The stream or group vanished (purge, or Redis restarted without its AOF).
                self.log.warning("group.missing", error=str(exc))
        self._leave()

    def _consume_until_stopped(self) -> bool:
        while not self._stop.is_set():
            entries = self._next_entries()
            if entries:
                self._process(entries)
            elif self.settings.burst and not self._retry_due:
                return True
            self._maybe_trim()
        return False

    def _leave(self) -> None:
        """Remove this consumer from its group, but only if it holds nothing: pending entries
        of a deleted consumer would be acknowledged by nobody and lost to the claim logic."""
        try:
            held = reading.own_pending_ids(self.client, self.route.input_stream, self.route.group,
                                           self.consumer, limit=1)
            if held:
                self.log.info("consumer.left_pending", note="entries handed back for claiming")
            else:
                self.client.xgroup_delconsumer(self.route.input_stream, self.route.group, self.consumer)
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
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
        due = sorted((i for i, t in self._retry_due.items() if t <= now), key=id_key)
        if due:
            due = due[: self.settings.batch]
            for entry_id in due:
                del self._retry_due[entry_id]
            return reading.claim(self.client, self.route.input_stream, self.route.group,
                                 self.consumer, due)
        if now >= self._next_claim_at:
            self._next_claim_at = now + self.settings.claim_every_s
            self._claim_cursor, claimed = reading.autoclaim(
                self.client, self.route.input_stream, self.route.group, self.consumer,
                self.settings.claim_idle_ms, self._claim_cursor, self.settings.batch)
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
        acks: list[str] = []
        dead: list[committing.DeadLetterNote] = []
        deliveries: list[Delivery] = []
        for entry in entries:
            if entry.payload is None:
                acks.append(entry.entry_id)  # deleted while pending: nothing left to do
                continue
            try:
                job = events.decode(entry.payload, self.settings.max_event_bytes)
            except events.EventError as exc:
                dead.append(self._note(entry.entry_id, entry.attempt, "EventError", str(exc),
                                       entry.payload, None))
                continue
            if entry.attempt > self.settings.max_deliveries:
                last = self._last_error.pop(entry.entry_id, ("DeliveryLimit", "no error recorded"))
                dead.append(self._note(entry.entry_id, entry.attempt, last[0],
                                       f"gave up after {entry.attempt - 1} deliveries: {last[1]}",
                                       entry.payload, job))
                continue
            deliveries.append(Delivery(entry.entry_id, entry.attempt, job))
        payloads = {e.entry_id: e.payload for e in entries}
        deliveries = self._attach_images(deliveries, dead, payloads)
        with self._renewing([d.entry_id for d in deliveries]):
            results = self._handle(deliveries)
        forwards, finishes = [], []
        for delivery, outcome in results:
            if isinstance(outcome, Reject):
                dead.append(self._note(delivery.entry_id, delivery.attempt, outcome.error_type,
                                       outcome.message, payloads[delivery.entry_id], delivery.job))
                continue
            if isinstance(outcome, Forward):
                try:
                    forwards.append(events.encode(outcome.job, self.settings.max_event_bytes))
                except events.EventError as exc:
                    dead.append(self._note(delivery.entry_id, delivery.attempt, "EventError",
                                           str(exc), payloads[delivery.entry_id], delivery.job))
                    continue
            elif isinstance(outcome, Finish):
                finishes.append(outcome)
            acks.append(delivery.entry_id)
        acks.extend(n.entry_id for n in dead)
        for entry_id in acks:  # a retried entry that now succeeded needs no error kept for it
            self._last_error.pop(entry_id, None)
        committing.commit(self.client, self.route, acks=acks, forwards=forwards, finishes=finishes,
                          dead=dead, max_event_bytes=self.settings.max_event_bytes,
                          blob_ttl_s=int(self.settings.retention_s) or 86400)
        self._log_batch(results, dead, time.perf_counter() - started)

    def _attach_images(self, deliveries: list[Delivery], dead: list,
                       payloads: dict[str, bytes | None]) -> list[Delivery]:
        """Fetch the claim-checked image bytes for stages that need pixels (one MGET)."""
        if not self.stage.needs_image or not deliveries:
            return deliveries
        blobs = self.client.mget([d.job["image"]["blob"] for d in deliveries])
        ready = []
        for delivery, blob in zip(deliveries, blobs):
            if blob is None and delivery.job.get("error") is None:
                dead.append(self._note(
                    delivery.entry_id, delivery.attempt, "ImageMissing",
                    f"image bytes {delivery.job['image']['blob']} are gone (purged or expired); "
                    "submit or replay the image again", payloads[delivery.entry_id], delivery.job))
                continue
            ready.append(Delivery(delivery.entry_id, delivery.attempt, delivery.job, blob))
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

    def _note(self, entry_id, attempt, error_type, message, payload, job) -> committing.DeadLetterNote:
        self.log.warning("entry.dead_lettered", entry_id=entry_id, attempt=attempt,
                         image_id=(job or {}).get("image_id"), error_type=error_type, error=message)
        return committing.DeadLetterNote(entry_id, attempt, error_type, message, payload, job)

    @contextlib.contextmanager
    def _renewing(self, ids: list[str]) -> Iterator[None]:
        """While the stage works, re-claim `ids` periodically so siblings see them as alive."""
        if not ids:
            yield
            return
        done = threading.Event()

        def renew_loop() -> None:
            while not done.wait(self.settings.renew_every_s):
                try:
                    reading.renew(self.client, self.route.input_stream, self.route.group,
                                  self.consumer, ids)
                except redis.RedisError as exc:
                    self.log.warning("claim.renew_failed", error=str(exc))

        thread = threading.Thread(target=renew_loop, name="renew-claims", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _log_batch(self, results, dead, seconds: float) -> None:
        count = len(results) + len(dead)
        self.processed += count
        per_entry_ms = round(seconds * 1000 / max(count, 1), 2)
        for delivery, outcome in results:
            self.log.info("entry.processed", image_id=delivery.job.get("image_id"),
                          entry_id=delivery.entry_id, attempt=delivery.attempt,
                          outcome=type(outcome).__name__.lower(), duration_ms=per_entry_ms,
                          batch=count)

    def _maybe_trim(self) -> None:
        now = time.monotonic()
        if now < self._next_trim_at:
            return
        self._next_trim_at = now + self.settings.trim_every_s
        keep_s = self.settings.retention_s if self.route.name == "detect" else None
        trimming.trim_safely(self.client, self.route.input_stream, keep_since_s=keep_s)
