"""`faces run`, `up`, `worker`, `watch`, `submit`, `status`: running the pipeline and feeding it.

Each command configures logging itself; only the ops/cli_* modules do."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from ops import logs
from ops.options import (DEFAULT_OUTPUT, DEFAULT_STATE_DIR, DEFAULT_STORAGE, Output, RedisUrl,
                         StateDir, Storage, app_settings)
from streams.settings import DEFAULT_RESULT_TTL_S, DEFAULT_RETENTION_S
from ops.cli_app import STAGES, app, fail

AgeGenderChoice = Annotated[Optional[str], typer.Option(
    "--agegender", envvar="FACES_AGEGENDER", show_envvar=True,
    help="Age/gender model: auto (DeepFace when its weights are there, else the bundled dlib "
         "networks), deepface, or dlib.")]


def _sigterm_as_interrupt() -> None:
    """SIGTERM (docker stop, kill) stops `run` / `up` like Ctrl-C: workers, then Redis."""
    import signal

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _check_model_environment(agegender: str | None = None) -> str:
    """Refuse a bad age/gender choice or $FACES_AGEGENDER_PRECISION here, not in a worker that
    would crash-loop; returns the age/gender backend choice."""
    from models.agegender_backends import AgeGenderChoiceError, check_choice
    from models.precision import PrecisionError, choose_precision

    try:
        choose_precision()
        return check_choice(agegender)
    except (PrecisionError, AgeGenderChoiceError) as exc:
        fail(str(exc))


@app.command()
def run(
    paths: Annotated[List[Path], typer.Argument(help="Image files or folders (walked recursively).")],
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
    visualize: Annotated[bool, typer.Option(help="Draw annotated pictures into --output.")] = True,
    batch: Annotated[int, typer.Option(envvar="FACES_BATCH", help="Entries per stage batch.")] = 8,
    detector: Annotated[Optional[str], typer.Option(envvar="FACES_DETECTOR", help="Detection backend.")] = None,
    agegender: AgeGenderChoice = None,
    high_water: Annotated[int, typer.Option(envvar="FACES_HIGH_WATER", help="Submission waits while this many images are in flight (0: no limit).")] = 500,
    timeout_s: Annotated[Optional[float], typer.Option(help="Give up if not all images have results by then.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every submission.")] = False,
) -> None:
    """Analyse every image under PATHS with all stages as worker processes, then stop.

    Exit 0 when every image is ok, 3 when it finished but some images have error results,
    1 when it could not run.
    """
    from ops.runjob import JobOptions, JobTimeout, describe_agegender, run_job
    from ops.progress import progress_printer
    from ops.target import StackAlreadyRunning
    from streams.errors import EmbeddedRedisError, RedisUnavailable

    logs.configure(level="INFO" if verbose else "WARNING")
    _sigterm_as_interrupt()
    agegender = _check_model_environment(agegender)
    for path in paths:
        if not path.exists():
            fail(f"{path} does not exist")
    app_cfg = app_settings(redis_url, state_dir, storage, output)
    # A short blocking read lets the workers notice the stop quickly at the end of the job.
    worker_args = {"*": ["--batch", str(batch), "--storage", str(storage), "--block-ms", "200"],
                   "sink": ["--output", str(output)] if visualize else ["--no-visualize"]}
    if detector:
        worker_args["detect"] = ["--detector", detector]
    worker_args["agegender"] = ["--agegender", agegender]
    try:
        with progress_printer("analysing") as on_progress:
            summary = run_job(app_cfg, list(paths), JobOptions(high_water=high_water, timeout_s=timeout_s,
                                                               worker_args=worker_args), on_progress)
    except (RedisUnavailable, EmbeddedRedisError, JobTimeout, StackAlreadyRunning) as exc:
        fail(str(exc))
    typer.echo(
        f"{summary.submitted} images: {summary.ok} ok, {summary.error} error, {summary.dead} dead-lettered; "
        f"{summary.faces} faces; {summary.skipped} other files skipped; {summary.seconds:.1f} s"
    )
    typer.echo(describe_agegender(summary.agegender_models))
    for path, reason in summary.errors:
        typer.echo(f"  error: {path}: {reason}")
    typer.echo(f"results: {storage}/" + (f"  pictures: {output}/" if visualize else ""))
    raise typer.Exit(summary.exit_code)


@app.command()
def up(
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
    batch: Annotated[int, typer.Option(envvar="FACES_BATCH")] = 8,
    watch_dir: Annotated[Optional[Path], typer.Option("--watch", help="Also watch this drop folder.")] = None,
    agegender: AgeGenderChoice = None,
) -> None:
    """Run every stage as worker processes until Ctrl-C (feed it with `faces submit`, or --watch)."""
    from ops.target import StackAlreadyRunning, redis_target
    from streams.errors import EmbeddedRedisError, RedisUnavailable
    from ops.workers import WorkerPool
    from producer.watch import Watcher
    from streams.connection import redact

    logs.configure()
    _sigterm_as_interrupt()
    agegender = _check_model_environment(agegender)
    if watch_dir is not None and not watch_dir.is_dir():
        fail(f"{watch_dir} is not a folder")
    app_cfg = app_settings(redis_url, state_dir, storage, output)
    with contextlib.ExitStack() as resources:
        try:
            # One stack per state dir (stack=True): a second `up` or `run` there is refused.
            url, client, _server = resources.enter_context(redis_target(app_cfg, stack=True))
        except (StackAlreadyRunning, EmbeddedRedisError, RedisUnavailable) as exc:
            fail(str(exc))
        pool = WorkerPool(url, app_cfg.log_dir, extra_args={
            "*": ["--batch", str(batch), "--storage", str(storage)], "sink": ["--output", str(output)],
            "agegender": ["--agegender", agegender]})
        pool.start()
        typer.echo(f"stack up on {redact(url)}; worker logs in {app_cfg.log_dir}"
                   + (f"; watching {watch_dir}" if watch_dir is not None else "") + "; Ctrl-C to stop",
                   err=True)
        try:
            # The pool is also supervised while the watcher waits (backpressure, Redis trouble):
            # a worker that died then is what would keep the backlog from ever draining.
            watcher = (Watcher(client, watch_dir, while_waiting=pool.supervise)
                       if watch_dir is not None else None)
            while True:
                pool.supervise()
                if watcher is not None:
                    watcher.poll_once()
                time.sleep(0.5)
        except KeyboardInterrupt:
            typer.echo("stopping...", err=True)
        finally:
            pool.stop()


@app.command()
def worker(
    stage: Annotated[str, typer.Argument(help="detect | landmarks | agegender | sink")],
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
    consumer: Annotated[Optional[str], typer.Option(envvar="FACES_CONSUMER", help="Consumer name; keep it stable across restarts to take back its own pending entries. Default: STAGE-HOST-PID.")] = None,
    batch: Annotated[int, typer.Option(envvar="FACES_BATCH", help="Entries read at once and given to the stage as one batch.")] = 8,
    block_ms: Annotated[int, typer.Option(envvar="FACES_BLOCK_MS", help="How long one read waits for new entries.")] = 1000,
    claim_idle_ms: Annotated[int, typer.Option(envvar="FACES_CLAIM_IDLE_MS", help="Entries idle this long in another consumer are claimed.")] = 60_000,
    max_deliveries: Annotated[int, typer.Option(envvar="FACES_MAX_DELIVERIES", help="Deliveries before an entry is dead-lettered.")] = 3,
    grace_s: Annotated[float, typer.Option(envvar="FACES_GRACE_S", help="Time to finish in-flight entries after SIGTERM.")] = 30.0,
    retention_s: Annotated[float, typer.Option(envvar="FACES_RETENTION_S", help="History the images stream keeps for replay.")] = DEFAULT_RETENTION_S,
    result_ttl_s: Annotated[int, typer.Option(envvar="FACES_RESULT_TTL_S", help="How long Redis keeps each image's latest result (the files stay).")] = DEFAULT_RESULT_TTL_S,
    burst: Annotated[bool, typer.Option(help="Exit once the input stream is drained.")] = False,
    detector: Annotated[Optional[str], typer.Option(envvar="FACES_DETECTOR", help="Detection backend (detect stage).")] = None,
    min_face_score: Annotated[Optional[float], typer.Option(envvar="FACES_MIN_FACE_SCORE", help="Detect stage: drop detections scoring below this (default per detector; dlib-hog 0.2).")] = None,
    agegender: AgeGenderChoice = None,
    visualize: Annotated[bool, typer.Option(envvar="FACES_VISUALIZE", help="Sink: draw annotated pictures into --output.")] = True,
) -> None:
    """Run one stage consumer (what a container runs); any number may run against one Redis.

    Without --redis-url it attaches to the embedded server of `faces up` on --state-dir."""
    from ops.target import NoRedisRunning, attach_url
    from ops.worker import run_worker
    from streams.errors import EmbeddedRedisError
    from streams.settings import RuntimeSettings, SettingsError

    if stage not in STAGES:
        fail(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    logs.configure()
    agegender = _check_model_environment(agegender)
    try:
        settings = RuntimeSettings(batch=batch, block_ms=block_ms, claim_idle_ms=claim_idle_ms,
                                   max_deliveries=max_deliveries, grace_s=grace_s,
                                   retention_s=retention_s, result_ttl_s=result_ttl_s, burst=burst)
    except SettingsError as exc:
        fail(str(exc))
    options = {"storage": storage, "output": output if visualize else None, "detector": detector,
               "agegender": agegender, "min_score": min_face_score}
    # Never start an embedded Redis here: it would stop on exit under the other workers.
    try:
        url = attach_url(app_settings(redis_url, state_dir, storage, output))
    except (NoRedisRunning, EmbeddedRedisError) as exc:
        fail(str(exc))
    code = run_worker(stage, url, settings, consumer, options)
    # Everything is acknowledged and logged; skip the interpreter's teardown, which takes
    # about a second once TensorFlow is loaded (measured by `faces bench`).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@app.command()
def watch(
    folder: Annotated[Path, typer.Argument(help="The drop folder.")],
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
    force: Annotated[bool, typer.Option(help="Analyse bytes seen before again.")] = False,
    settle_s: Annotated[float, typer.Option(envvar="FACES_SETTLE_S", help="A file must keep its size and mtime this long before it is read.")] = 1.0,
    high_water: Annotated[int, typer.Option(envvar="FACES_HIGH_WATER")] = 500,
) -> None:
    """Publish each new image dropped into FOLDER exactly once, until Ctrl-C."""
    from ops.target import redis_target
    from producer.watch import Watcher

    logs.configure()
    if not folder.is_dir():
        fail(f"{folder} is not a folder")
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        watcher = None
        try:  # Ctrl-C may come while the watcher waits for Redis, even while it starts
            watcher = Watcher(client, folder, settle_s=settle_s, force=force, high_water=high_water)
            watcher.run()
        except KeyboardInterrupt:
            pass
    if watcher is not None:
        typer.echo(f"published {watcher.published}; {watcher.duplicates} duplicates skipped", err=True)


@app.command()
def submit(
    paths: Annotated[List[Path], typer.Argument(help="Image files or folders.")],
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
    high_water: Annotated[int, typer.Option(envvar="FACES_HIGH_WATER")] = 500,
) -> None:
    """Publish image files (or every image under folders) to the pipeline."""
    from ops.target import redis_target
    from producer.files import scan
    from producer.submit import submit_file

    logs.configure(level="WARNING")
    found = scan(paths)
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        for path in found.images:
            sent = submit_file(client, path, high_water=high_water)
            typer.echo(f"{sent.image_id}\t{sent.path}")
    typer.echo(f"submitted {len(found.images)} images; {found.skipped} other files skipped", err=True)


@app.command()
def status(
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    watch_s: Annotated[Optional[float], typer.Option("--watch", help="Redraw every this many seconds until Ctrl-C.")] = None,
) -> None:
    """Per stream its length; per group pending, lag, consumers, throughput and oldest pending
    age; dead letters, images in flight, Redis memory."""
    from ops.statusview import render_status, watch_status
    from ops.target import redis_target
    from streams.status import pipeline_status

    logs.configure(level="WARNING")
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        if watch_s:
            watch_status(lambda: pipeline_status(client), watch_s)
            return
        data = pipeline_status(client)
    typer.echo(json.dumps(data, indent=1) if as_json else render_status(data))
