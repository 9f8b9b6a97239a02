"""Worker processes: how `faces run` / `faces up` start one process per stage, keep them alive,
and stop them in order.

A worker that fails while starting (a bad option, a model file missing) or keeps failing is not
restarted forever: the pool raises, with the worker's own last error line, and the command
stops. Keeps failing: MAX_CRASHES exits on its own within CRASH_WINDOW_S, whether or not it got
ready in between (a Redis that refuses a command the loop needs fails it right after ready).
A worker stopped from outside (a signal, Ctrl-C or SIGTERM before its own handler, a grace
period that ran out) or replaced after a batch overran its limit is restarted and not counted.
Readiness is a file the worker creates once its models are loaded and Redis answers
(READY_FILE_ENV); the log file's last error line is what the user is shown."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from faces import settings as defaults
from faces.errors import FacesError
from faces.ops import exits
from faces.streams.embedded import die_with_parent
from faces.streams.names import STAGE_ORDER

log = structlog.get_logger(__name__)

RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 30.0
# A worker that ran this long before it died starts its restart backoff afresh.
HEALTHY_RUN_S = 60.0
# Exits on its own within CRASH_WINDOW_S that make a crash loop. Restarts back off 1, 2, 4 s...,
# so a worker failing at once reaches three in well under a minute; a worker that fails now and
# then (once in minutes) is restarted for good.
MAX_CRASHES = 3
CRASH_WINDOW_S = 300.0
# Exit codes of a worker stopped or replaced, not failing: restarted, never counted as a crash.
# INTERRUPTED is what a SIGTERM or Ctrl-C gives before the worker sets its own handler (the
# CLI's); GRACE_EXPIRED follows a SIGTERM; BATCH_OVERRUN is the watchdog replacing a worker
# whose stage call hung (the entry's delivery limit deals with an entry that hangs every time).
NOT_CRASHES = frozenset({exits.INTERRUPTED, exits.GRACE_EXPIRED, exits.BATCH_OVERRUN})
READY_FILE_ENV = "FACES_READY_FILE"


class WorkerStartFailed(FacesError, RuntimeError):
    """A worker exited before it was ready, on its first start.

    Cause: an option it refused, a model file it could not load, a Redis it could not use; its
    own last error line is in the message. Remedy: fix what that line names; the full log is
    under --state-dir/logs.
    """


class WorkerCrashLooping(FacesError, RuntimeError):
    """A worker keeps exiting on its own (or stopped for good: its consumer group was lost).

    Cause and remedy: its own last error line, quoted in the message.
    """


def last_error_line(log_path: Path, max_bytes: int = 65536) -> str:
    """The most telling line at the end of a worker's log: its `error: ...` line (what the CLI
    prints before exiting), else the last JSON log line at error level, else the last line."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - max_bytes))
            lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    for line in reversed(lines):
        if line.startswith("error: "):
            return line[len("error: ") :]
        record = _json_record(line)
        if record and record.get("level") in ("error", "critical"):
            return str(record.get("error") or record.get("event"))
    return lines[-1] if lines else "(empty log)"


def _json_record(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def failed_on_its_own(code: int | None) -> bool:
    """Whether a worker's exit code says it failed by itself: not killed by a signal (negative),
    not a clean stop (0), not stopped or replaced from outside (NOT_CRASHES)."""
    return code is not None and code > 0 and code not in NOT_CRASHES


def _pool_tag() -> str:
    """host-pid-random: no other pool, on this host or another, has it."""
    return f"{socket.gethostname().split('.')[0]}-{os.getpid()}-{secrets.token_hex(2)}"


def child_setup(niceness: int) -> Callable[[], None]:  # pragma: no cover - runs in the child
    """The preexec_fn of a worker: it dies with the pool, and runs `niceness` nicer than it."""

    def setup() -> None:
        die_with_parent()
        if niceness:
            os.nice(niceness)

    return setup


@dataclass
class Worker:
    stage: str
    consumer: str
    command: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)  # added to ours; holds the Redis URL
    slot: str = ""  # "detect-0": this pool's name for it (log file, waiting_for)
    niceness: int = 0  # added to the pool's own (defaults.STAGE_NICENESS)
    process: subprocess.Popen | None = None
    restarts: int = 0
    restart_at: float = 0.0
    started_at: float = 0.0
    was_ready: bool = False  # ever ready: failing later is a crash, not a bad start
    crashes: list[float] = field(default_factory=list)  # monotonic times of exits on its own

    @property
    def ready_file(self) -> Path:
        return self.log_path.with_suffix(".ready")

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                preexec_fn=child_setup(self.niceness),
                env={**os.environ, **self.env, READY_FILE_ENV: str(self.ready_file)},
            )
        self.started_at = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def ready(self) -> bool:
        """Alive, its models loaded and Redis answering (it created its ready file)."""
        return self.alive and self.note_ready()

    def note_ready(self) -> bool:
        """Whether this run of the process got ready."""
        if self.ready_file.exists():
            self.was_ready = True
            return True
        return False

    def count_crash(self, now: float) -> int:
        """Record an exit on its own at `now`; how many fell within the last CRASH_WINDOW_S."""
        self.crashes = [t for t in self.crashes if now - t < CRASH_WINDOW_S] + [now]
        return len(self.crashes)


@dataclass
class WorkerPool:
    """One process per (stage, index), each a `faces worker STAGE` against `redis_url`."""

    redis_url: str
    log_dir: Path
    counts: dict[str, int] = field(default_factory=lambda: {s: 1 for s in STAGE_ORDER})
    extra_args: dict[str, list[str]] = field(default_factory=dict)  # stage -> options
    grace_s: float = defaults.GRACE_S
    workers: list[Worker] = field(default_factory=list)
    stopping: bool = False
    tag: str = field(default_factory=_pool_tag)

    def consumer_name(self, stage: str, index: int) -> str:
        """Unique to this pool: another pool on the same Redis (a second host, a second stack)
        must not share a name, or each would take the other's pending entries for its own. A
        restarted worker keeps its name, and so takes back its own pending entries at once."""
        return f"{stage}-{index}-{self.tag}"

    def start(self) -> None:
        # The URL goes in the environment, not argv: argv (with any password) is public in `ps`.
        env = {"FACES_REDIS_URL": self.redis_url}
        for stage in STAGE_ORDER:
            for index in range(self.counts.get(stage, 1)):
                slot = f"{stage}-{index}"
                consumer = self.consumer_name(stage, index)
                command = [
                    sys.executable,
                    "-m",
                    "faces",
                    "worker",
                    stage,
                    "--consumer",
                    consumer,
                    "--grace-s",
                    str(self.grace_s),
                    *self.extra_args.get(stage, []),
                    *self.extra_args.get("*", []),
                ]
                log_path = self.log_dir / f"{slot}.log"
                worker = Worker(stage, consumer, command, log_path, env, slot, niceness=defaults.STAGE_NICENESS[stage])
                worker.start()
                self.workers.append(worker)
        log.info("workers.started", count=len(self.workers))

    def supervise(self) -> None:
        """Restart workers that died (same consumer name: it takes back its own pending entries).

        Raises WorkerStartFailed when a worker exits on its own before its first ready, and
        WorkerCrashLooping when one exits on its own MAX_CRASHES times within CRASH_WINDOW_S
        (ready or not) or lost its group. A worker killed by a signal (OOM killer, an operator, a
        chaos test), also while it loads its models, is just restarted."""
        if self.stopping:
            return
        now = time.monotonic()
        for worker in self.workers:
            if worker.alive:
                worker.note_ready()
                continue
            if worker.restart_at == 0.0:
                self._on_exit(worker, now)
            elif now >= worker.restart_at:
                worker.restarts += 1
                worker.restart_at = 0.0
                worker.start()
                log.info("worker.restarted", consumer=worker.consumer, restarts=worker.restarts)

    def _on_exit(self, worker: Worker, now: float) -> None:
        code = worker.process.returncode if worker.process else None
        ran_s = now - worker.started_at
        if code == exits.GROUP_LOST:
            raise WorkerCrashLooping(f"the {worker.stage} worker stopped: {last_error_line(worker.log_path)}")
        if failed_on_its_own(code):
            self._check_crash(worker, now)
        log.warning(
            "worker.exited",
            consumer=worker.consumer,
            code=code,
            ran_s=round(ran_s, 1),
            log=str(worker.log_path),
            note="restarting",
        )
        if ran_s >= HEALTHY_RUN_S:
            worker.restarts = 0
        worker.restart_at = now + min(RESTART_DELAY_S * 2**worker.restarts, MAX_RESTART_DELAY_S)

    @staticmethod
    def _check_crash(worker: Worker, now: float) -> None:
        """Raise when this exit on its own ends the command: the first start failed, or the
        worker failed MAX_CRASHES times within CRASH_WINDOW_S."""
        line = f"{last_error_line(worker.log_path)} (log: {worker.log_path})"
        if not worker.note_ready() and not worker.was_ready:
            raise WorkerStartFailed(f"the {worker.stage} worker could not start: {line}")
        crashes = worker.count_crash(now)
        if crashes >= MAX_CRASHES:
            raise WorkerCrashLooping(
                f"the {worker.stage} worker failed {crashes} times within {CRASH_WINDOW_S:.0f} s: {line}"
            )

    def waiting_for(self) -> list[str]:
        """Slots of workers not ready yet (still loading models or connecting)."""
        return [w.slot for w in self.workers if not w.ready]

    def stop(self) -> None:
        """SIGTERM every worker, wait up to the grace period (plus a margin), then SIGKILL."""
        self.stopping = True
        for worker in self.workers:
            if worker.alive and worker.process is not None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s + 5
        for worker in self.workers:
            if worker.process is None:
                continue
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        log.info("workers.stopped", count=len(self.workers))

    def by_stage(self, stage: str) -> list[Worker]:
        return [w for w in self.workers if w.stage == stage]
