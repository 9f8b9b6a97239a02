"""`faces up`: the whole stack until Ctrl-C: Redis, the worker pool and, when asked, a drop-folder
watcher and the HTTP API as a child process, all supervised in one loop. The command
(ops/cli/pipeline.py `up`) checks every option first, then runs this job."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from faces.errors import FacesError
from faces.ops import exits, interrupts
from faces.ops.jobs.target import redis_target
from faces.ops.settings import AppSettings
from faces.ops.supervise import pool as worker_pool  # the module: tests stand in for its WorkerPool
from faces.ops.supervise.counts import describe
from faces.ops.supervise.server import start_server_process, stop_server_process

TURN_S = 0.5  # one pass of supervision: how soon a dead worker or a new dropped file is seen


@dataclass(frozen=True)
class UpOptions:
    counts: dict[str, int]  # worker processes per stage
    worker_args: dict[str, list[str]]  # the analysis options every worker gets
    high_water: int
    watch_dir: Path | None = None  # also watch this drop folder
    api_at: tuple[str, int] | None = None  # (host, port): also serve the HTTP API there


class ApiStopped(FacesError, RuntimeError):
    """The HTTP API that `faces up --serve` started exited on its own.

    Cause: written in its log, named in the message. Remedy: fix what the log says, start again."""

    exit_code = exits.FAILED


def up_job(app: AppSettings, options: UpOptions, say: Callable[[str], None]) -> None:
    """Run the stack until Ctrl-C or SIGTERM (returns then, everything stopped); `say` is given
    the lines for the person at the terminal. Raises when a worker cannot start or keeps failing
    (ops/supervise/pool.py) and ApiStopped."""
    from faces.producer.watch import Watcher
    from faces.streams.connection import redact

    with contextlib.ExitStack() as resources:
        # One stack per state dir (stack=True): a second `up` or `run` there is refused.
        url, client, _server = resources.enter_context(redis_target(app, stack=True))
        pool = worker_pool.WorkerPool(url, app.log_dir, counts=options.counts, extra_args=options.worker_args)
        pool.start()
        resources.callback(pool.stop)
        api = start_server_process(url, app, *options.api_at, options.high_water) if options.api_at else None
        if api is not None:
            resources.callback(stop_server_process, api)
        say(
            f"stack up on {redact(url)}; loading models; worker logs in {app.log_dir}"
            + (f"; watching {options.watch_dir}" if options.watch_dir is not None else "")
            + (f"; API on http://{options.api_at[0]}:{options.api_at[1]}/" if options.api_at else "")
            + "; Ctrl-C to stop"
        )
        try:
            # The pool is also supervised while the watcher waits (backpressure, Redis trouble):
            # a worker that died then is what would keep the backlog from ever draining.
            watcher = (
                Watcher(client, options.watch_dir, high_water=options.high_water, while_waiting=pool.supervise)
                if options.watch_dir is not None
                else None
            )
            if watcher is not None:
                # Before the pool stops and Redis with it: a stopped watcher leaves no heartbeat.
                resources.callback(watcher.stop_beating)
            _supervise(app, options, pool, api, watcher, say)
        except KeyboardInterrupt:
            say("stopping...")


def _supervise(app: AppSettings, options: UpOptions, pool, api: subprocess.Popen | None, watcher, say) -> None:
    """Turn after turn until interrupted: the workers kept alive, the API checked, the watcher's pass."""
    announced = False
    while True:
        interrupts.raise_if_requested()
        pool.supervise()
        if api is not None and api.poll() is not None:
            raise ApiStopped(f"the HTTP API stopped (exit {api.returncode}): see {app.log_dir / 'serve.log'}")
        if not announced and not pool.waiting_for():
            say(f"ready: {len(pool.workers)} workers ({describe(options.counts)})")
            announced = True
        if watcher is not None:
            watcher.turn()  # a pass and its heartbeat (`faces health --stage watch`)
        time.sleep(TURN_S)
