"""The main job: start the stack, submit every image under some paths, wait until each has a
result, stop the stack, and summarise. What `faces run DIR` (and `make run`) does."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import redis
import structlog

from faces import settings as defaults
from faces.errors import FacesError
from faces.ops import exits, interrupts
from faces.ops.jobs.readback import current_result, keep_locally
from faces.ops.jobs.target import redis_target
from faces.ops.settings import AppSettings
from faces.ops.supervise.pool import WorkerPool
from faces.producer.files import identify, image_stem, scan
from faces.producer.submit import submit_file
from faces.streams import inflight, results
from faces.streams.outcomes import SUPERSEDED

log = structlog.get_logger(__name__)


@dataclass
class JobSummary:
    submitted: int = 0
    skipped: int = 0
    already: int = 0  # images whose current result was kept (a second run, no --force)
    ok: int = 0
    error: int = 0
    dead: int = 0
    superseded: int = 0  # finished, but a newer submission's result is the one kept
    taken_over: int = 0  # jobs an earlier run left in flight, waited for instead of submitted again
    withdrawn: int = 0  # on Ctrl-C: this run's jobs no worker had started, taken back out
    faces: int = 0
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    agegender_models: Counter = field(default_factory=Counter)  # models.agegender of ok results
    model_notes: set = field(default_factory=set)  # what results say about a model that could not run

    @property
    def exit_code(self) -> int:
        return exits.OK if self.error == 0 and self.dead == 0 else exits.SOME_ERRORS

    @property
    def finished(self) -> int:
        return self.ok + self.error + self.dead + self.superseded

    def outcomes(self) -> str:
        """'N ok, N error, N dead-lettered', and the superseded when there are any."""
        text = f"{self.ok} ok, {self.error} error, {self.dead} dead-lettered"
        return text + (f", {self.superseded} superseded by a newer submission" if self.superseded else "")


@dataclass
class JobOptions:
    high_water: int = defaults.HIGH_WATER
    timeout_s: float | None = None
    worker_args: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] | None = None
    grace_s: float = defaults.GRACE_S
    force: bool = False  # analyse again images that already have a current ok result
    output: Path | None = None  # where read-back results get their pictures (None: no pictures)
    keep_results: bool = True  # write each result into --storage too (ops/jobs/readback.py)
    on_result: Callable[[str], None] | None = None  # given each result's JSON as it arrives


class JobDisplay(Protocol):
    """What a job tells the person waiting: the phase it is in and the images done
    (ops/cli/progress.py BarDisplay on a terminal)."""

    def phase(self, text: str) -> None: ...

    def count(self, done: int, total: int, failed: int) -> None: ...


class SilentDisplay:
    """A JobDisplay that shows nothing: a job run from code has nobody to show it to."""

    def phase(self, text: str) -> None:
        pass

    def count(self, done: int, total: int, failed: int) -> None:
        pass


class JobInterrupted(FacesError, RuntimeError):
    """Ctrl-C (or SIGTERM) during a job; carries what was done so far. The CLI catches it and
    prints the summary (internal: it never reaches the user as an error line)."""

    exit_code = exits.INTERRUPTED
    internal = True

    def __init__(self, summary: JobSummary, total: int):
        super().__init__("interrupted")
        self.summary, self.total = summary, total


class JobTimeout(FacesError, RuntimeError):
    """Not every image had a result within --timeout-s.

    Cause: a stage worker keeps failing (see the worker logs under --state-dir/logs), or the
    timeout is too short for the number of images. Remedy: read the logs; raise --timeout-s.
    """


def run_job(app: AppSettings, paths: list[Path], options: JobOptions, display: JobDisplay | None = None) -> JobSummary:
    """Start the stack, submit every image under `paths` (those with a current ok result in
    --storage are kept unless options.force), wait for every result, stop the stack.

    Raises JobInterrupted on Ctrl-C, WorkerStartFailed / WorkerCrashLooping (ops/supervise/pool.py)
    when a worker cannot run, JobTimeout past options.timeout_s."""
    display = display or SilentDisplay()
    started = time.perf_counter()
    found = scan(paths)
    summary = JobSummary(skipped=found.skipped)
    display.phase("looking for current results")
    todo = _to_analyse(found.images, app.storage, options.force, summary)
    if todo:
        _analyse(app, todo, options, display, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _to_analyse(images: list[Path], storage: Path, force: bool, summary: JobSummary) -> list[Path]:
    """The images to submit: not those with a current ok result in `storage` (unless `force`).

    Only a file whose name stem has a result file in `storage` is hashed here (its bytes decide
    whether that result is current); the others are read once, when they are submitted."""
    stems = set() if force else {name.stem.rsplit("-", 1)[0] for name in storage.glob("*.json")}
    todo = []
    for path in images:
        if image_stem(str(path)) not in stems:
            todo.append(path)
            continue
        try:
            image_id, sha256 = identify(os.path.abspath(path))
        except OSError as exc:
            _unreadable(summary, path, exc)
            continue
        if current_result(storage, image_id, sha256):
            summary.already += 1
        else:
            todo.append(path)
    return todo


def _unreadable(summary: JobSummary, path: Path, exc: OSError) -> None:
    """A file that cannot be read is an error of the job, not a crash of it."""
    summary.error += 1
    summary.errors.append((str(path), exc.strerror or str(exc)))


def _analyse(
    app: AppSettings, images: list[Path], options: JobOptions, display: JobDisplay, summary: JobSummary
) -> None:
    display.phase("starting Redis" if not app.redis_url else "connecting to Redis")
    with redis_target(app, stack=True) as (url, client, _server):
        cursors = results.cursors_now(client)  # before the look for jobs in flight: none is missed
        waiting = _take_over(client, images, summary)
        taken = set(waiting.values())
        # Looked at again: a job of another stack's workers may have finished since the first look.
        images = _to_analyse(
            [p for p in images if os.path.abspath(p) not in taken], app.storage, options.force, summary
        )
        total = len(waiting) + len(images)
        pool = start_pool(url, app, options)
        try:
            display.phase("submitting")
            for path in images:
                interrupts.raise_if_requested()
                # Workers are kept alive while backpressure holds a submission back.
                try:
                    sent = submit_file(client, path, high_water=options.high_water, while_waiting=pool.supervise)
                except OSError as exc:
                    _unreadable(summary, path, exc)
                    continue
                waiting[sent.job_id] = sent.path
                summary.submitted += 1
            wait_for_results(client, waiting, cursors, summary, pool, options, _counter(display, pool, summary), app)
        except KeyboardInterrupt:
            # A rerun would otherwise find them queued and analyse its images a second time.
            display.phase("withdrawing the jobs no worker has started")
            try:
                summary.withdrawn = inflight.withdraw_unstarted(client, waiting)
            except redis.RedisError as exc:  # the rerun still takes them over; the stop goes on
                log.warning("run.withdraw_failed", error=str(exc) or type(exc).__name__)
            raise JobInterrupted(summary, total) from None
        finally:
            display.phase("stopping workers")
            pool.stop()


def _take_over(client, images: list[Path], summary: JobSummary) -> dict[str, str]:
    """Job id -> path of the jobs already in flight for `images` (an earlier run stopped by
    Ctrl-C, a `faces submit` of the same files): awaited, never submitted again. A job counts
    only for the same path with the same bytes (sha256) as the file has now."""
    wanted = {os.path.abspath(p): p for p in images}
    waiting = {}
    for held in inflight.jobs_in_flight(client):
        path = held.job["image"]["path"]
        if path not in wanted:
            continue
        try:
            _image_id, sha256 = identify(path)
        except OSError:
            continue  # unreadable now: submitting it reports why
        if sha256 == held.job["image"]["sha256"]:
            waiting[held.job_id] = path
            summary.submitted += 1
            summary.taken_over += 1
    return waiting


def _counter(display: JobDisplay, pool: WorkerPool, summary: JobSummary) -> Callable[[int, int], None]:
    """Progress: the phase (which workers are still loading their models) and the counts."""

    def on_progress(done: int, total: int) -> None:
        loading = pool.waiting_for()
        display.phase(f"loading models: {', '.join(loading)}" if loading else "analysing")
        display.count(done, total, summary.error + summary.dead)

    return on_progress


def start_pool(url: str, app: AppSettings, options: JobOptions) -> WorkerPool:
    pool = WorkerPool(
        url,
        app.log_dir,
        grace_s=options.grace_s,
        extra_args=options.worker_args,
    )
    if options.counts:  # else the pool's default: one worker per stage
        pool.counts = options.counts
    pool.start()
    return pool


def wait_for_results(
    client,
    waiting: dict[str, str],
    cursors: dict[str, str],
    summary: JobSummary,
    pool: WorkerPool | None,
    options: JobOptions,
    on_progress: Callable[[int, int], None],
    app: AppSettings,
) -> None:
    """Follow the results until every job in `waiting` (job id -> path) has its final word."""
    total = len(waiting)
    on_progress(0, total)
    deadline = time.monotonic() + options.timeout_s if options.timeout_s else None
    while waiting:
        interrupts.raise_if_requested()  # a Ctrl-C whose KeyboardInterrupt a destructor swallowed
        for note in results.follow(client, cursors, block_ms=500):
            path = waiting.pop(note.job_id, None)
            if path is not None:
                _count(summary, client, note, path, app, options)
        on_progress(total - len(waiting), total)
        if pool is not None:
            pool.supervise()
        if deadline and time.monotonic() > deadline:
            raise JobTimeout(
                f"{len(waiting)} of {total} images have no result "
                f"after {options.timeout_s:.0f} s; worker logs: {app.log_dir}"
            )


def _count(
    summary: JobSummary, client, note: results.Announcement, path: str, app: AppSettings, options: JobOptions
) -> None:
    stored = results.stored_result(client, note.image_id)
    result = json.loads(stored) if stored else None
    if stored and result is not None and options.keep_results:
        keep_locally(stored, result, app.storage, options.output)
    if note.status == SUPERSEDED:
        result = None  # what Redis holds is the newer submission's result, not this job's
    if options.on_result is not None:
        options.on_result(
            json.dumps(result, separators=(",", ":"))
            if result is not None
            else json.dumps({"image_id": note.image_id, "job_id": note.job_id, "status": note.status, "path": path})
        )
    if note.status == "ok":
        summary.ok += 1
        if result is not None:
            summary.model_notes.update(
                n["message"] for n in result.get("notes", {}).values() if isinstance(n, dict) and n.get("message")
            )
            summary.faces += len(result["faces"])
            summary.agegender_models[result["models"].get("agegender")] += 1
        return
    if note.status == SUPERSEDED:
        summary.superseded += 1
        return
    if note.status == "dead":
        summary.dead += 1
        summary.errors.append((path, "dead-lettered at the sink; see `faces dlq list`"))
        return
    summary.error += 1
    reason = result["error"]["message"] if result is not None else "error"
    summary.errors.append((path, reason))


def describe_agegender(models: Counter) -> str:
    """One line saying which model gave the ages and genders of a job, and how to switch."""
    from faces.models.agegender_bundled import NAME as BUNDLED

    used = [name for name in models if name]
    if not models:
        return "ages and genders: no ok results"
    if not used:
        return (
            "ages and genders: none - DeepFace's weights are missing and --agegender deepface "
            "insists on them; `faces models fetch` installs them, or use --agegender auto"
        )
    if used == [BUNDLED]:
        return (
            "ages and genders: the bundled dlib networks (offline); for DeepFace's, "
            "`faces models fetch` and --agegender auto (the default) picks them up"
        )
    if all(name.startswith("deepface") for name in used):
        return f"ages and genders: DeepFace ({', '.join(used)}); --agegender dlib for the bundled networks"
    return f"ages and genders: {', '.join(sorted(used))}"
