"""`faces replay`: plan, publish, and, when no workers are consuming, run them until done.

History to replay lives in the pipeline's Redis: the replay attaches to a running one, or, on
an embedded state directory where nothing runs (after `faces run`), starts that server again
with its own workers, as `faces run` does (ops/jobs/target.py `replay_target`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import redis

from faces.ops.jobs.run import JobOptions, JobSummary, start_pool, wait_for_results
from faces.ops.jobs.target import StackAlreadyRunning, replay_target, stack_lock
from faces.ops.settings import AppSettings
from faces.producer import replay
from faces.streams import heartbeat, publishing, results


def replay_job(
    app: AppSettings,
    *,
    since: str | None,
    until: str | None,
    images: list[str],
    from_stage: str,
    options: JobOptions,
    on_progress: Callable[[int, int], None] = lambda d, t: None,
) -> tuple[JobSummary, list[tuple[str, str]]]:
    """Returns the summary of what was replayed and the (image, reason) pairs that were not.
    NoRedisRunning when no pipeline runs and none ever ran on the state dir;
    replay.BadSelection / ImageNotFound for images named that select nothing or several,
    raised before any worker starts."""
    started = time.perf_counter()
    with replay_target(app) as (url, client, owns_stack):
        planned = replay.plan(client, since=since, until=until, images=images, from_stage=from_stage)
        skipped = list(planned.skipped)
        summary = JobSummary()
        with contextlib.ExitStack() as stack:
            pool = None
            if planned.jobs and (owns_stack or _must_run_workers(app, client, from_stage, stack)):
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


def _must_run_workers(app: AppSettings, client: redis.Redis, from_stage: str, held: contextlib.ExitStack) -> bool:
    """Whether this replay starts workers of its own (then holding the stack lock in `held`).

    Not when every stage it needs has a live worker: their heartbeats say so, where Redis 6.2
    lists an idle consumer only once it was given an entry. Nor when another stack holds this
    state dir and serves its embedded Redis (a `faces up` whose workers still load their
    models): they will take the jobs."""
    live = {worker["stage"] for worker in heartbeat.live_workers(client)}
    if all(stage in live for stage in replay.stages_from(from_stage)):
        return False
    try:
        held.enter_context(stack_lock(app.state_dir))
    except StackAlreadyRunning:
        if app.redis_url:
            raise  # that stack may serve another Redis: nothing says it will take these jobs
        return False
    return True
