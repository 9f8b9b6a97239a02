"""`faces replay`: plan, publish, and, when no workers are attached, run them until done.

It attaches to a running Redis only (ops/target.py `attached`): history to replay lives in the
pipeline's Redis, and an embedded server started here would have none."""

from __future__ import annotations

import contextlib
import time
from typing import Callable

from faces.ops.runjob import JobOptions, JobSummary, start_pool, wait_for_results
from faces.ops.settings import AppSettings
from faces.ops.target import attached, stack_lock
from faces.producer import replay
from faces.streams import history, publishing, results


def replay_job(app: AppSettings, *, since: str | None, until: str | None, images: list[str],
               from_stage: str, options: JobOptions,
               on_progress: Callable[[int, int], None] = lambda d, t: None,
               ) -> tuple[JobSummary, list[tuple[str, str]]]:
    """Returns the summary of what was replayed and the (image, reason) pairs that were not.
    NoRedisRunning when no pipeline runs; replay.BadSelection / ImageNotFound for images named
    that select nothing or several, raised before any worker starts."""
    started = time.perf_counter()
    with attached(app) as (url, client):
        planned = replay.plan(client, since=since, until=until, images=images, from_stage=from_stage)
        skipped = list(planned.skipped)
        summary = JobSummary()
        needs_workers = not history.consumers_attached(client, replay.stages_from(from_stage))
        with contextlib.ExitStack() as stack:
            pool = None
            if needs_workers and planned.jobs:
                stack.enter_context(stack_lock(app.state_dir))
                pool = start_pool(url, app, options)
                stack.callback(pool.stop)
            cursors = results.cursors_now(client)

            def keep_workers_alive() -> None:
                if pool is not None:
                    pool.supervise()

            waiting = {}
            for job in planned.jobs:
                # The backpressure wait is here, not in replay.publish, so that the workers this
                # replay started are supervised during it: one that died while the backlog was
                # full would otherwise never be restarted, and the wait would never end.
                publishing.wait_for_room(client, options.high_water, while_waiting=keep_workers_alive)
                try:
                    replay.publish(client, job)
                except replay.ReplayError as exc:
                    skipped.append((job["image_id"], str(exc)))
                    continue
                waiting[job["job_id"]] = job["image"]["path"]
            summary.submitted = len(waiting)
            wait_for_results(client, waiting, cursors, summary, pool, options, on_progress, app)
    summary.seconds = time.perf_counter() - started
    return summary, skipped
