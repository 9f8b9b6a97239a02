"""Worker processes: how `faces run` / `faces up` start one process per stage, keep them alive,
and stop them in order."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from streams.embedded import die_with_parent
from streams.names import STAGE_ORDER

log = structlog.get_logger(__name__)

RESTART_DELAY_S = 1.0


def _pool_tag() -> str:
    """host-pid-random: no other pool, on this host or another, has it."""
    return f"{socket.gethostname().split('.')[0]}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass
class Worker:
    stage: str
    consumer: str
    command: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)  # added to ours; holds the Redis URL
    slot: str = ""  # "detect-0": this pool's name for it (log file, pids)
    process: subprocess.Popen | None = None
    restarts: int = 0
    restart_at: float = 0.0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log_file,
                                            stderr=log_file, preexec_fn=die_with_parent,
                                            env={**os.environ, **self.env})

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class WorkerPool:
    """One process per (stage, index), each a `faces worker STAGE` against `redis_url`."""

    redis_url: str
    log_dir: Path
    counts: dict[str, int] = field(default_factory=lambda: {s: 1 for s in STAGE_ORDER})
    extra_args: dict[str, list[str]] = field(default_factory=dict)  # stage -> options
    grace_s: float = 30.0
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
                command = [sys.executable, "-m", "ops", "worker", stage,
                           "--consumer", consumer, "--grace-s", str(self.grace_s),
                           *self.extra_args.get(stage, []), *self.extra_args.get("*", [])]
                worker = Worker(stage, consumer, command, self.log_dir / f"{slot}.log", env, slot)
                worker.start()
                self.workers.append(worker)
        log.info("workers.started", count=len(self.workers))

    def supervise(self) -> None:
        """Restart workers that died (same consumer name: it takes back its own pending entries)."""
        if self.stopping:
            return
        now = time.monotonic()
        for worker in self.workers:
            if worker.alive:
                continue
            if worker.restart_at == 0.0:
                code = worker.process.returncode if worker.process else None
                log.warning("worker.exited", consumer=worker.consumer, code=code, log=str(worker.log_path))
                worker.restart_at = now + RESTART_DELAY_S * min(2 ** worker.restarts, 30)
            elif now >= worker.restart_at:
                worker.restarts += 1
                worker.restart_at = 0.0
                worker.start()
                log.info("worker.restarted", consumer=worker.consumer, restarts=worker.restarts)

    def stop(self) -> None:
        """SIGTERM every worker, wait up to the grace period (plus a margin), then SIGKILL."""
        self.stopping = True
        for worker in self.workers:
            if worker.alive:
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

    def pids(self) -> dict[str, int]:
        """Slot ("detect-0") -> pid."""
        return {w.slot: w.process.pid for w in self.workers if w.process}
