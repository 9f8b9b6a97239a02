"""`faces run`, `up`, `worker`, `watch`, `submit`, `status`: running the pipeline and feeding it.

Each command configures logging itself; only the ops/cli/ modules do."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from faces import logs
from faces import settings as defaults
from faces.ops import exits, interrupts  # interrupts: installed by application.main
from faces.ops.cli.application import app, debug_enabled, fail, usage
from faces.ops.cli.options import (
    AgeGender,
    Analysis,
    ConsumerName,
    Detector,
    HighWater,
    KeepDescriptors,
    Landmarks,
    MetricsPort,
    MinFaceScore,
    Recognition,
    TimeoutS,
    VectorIndex,
    Visualize,
    Workers,
    check_folders,
    with_analysis,
    with_runtime,
    with_settings,
)
from faces.ops.cli.wording import count
from faces.ops.settings import AppSettings
from faces.ops.web.options import Host, Port
from faces.streams.names import STAGE_ORDER


def _check_precision(settings: AppSettings) -> None:
    """Refuse a bad $FACES_AGEGENDER_PRECISION here, not in a worker that would fail at start."""
    from faces.models.precision import PrecisionError, choose_precision

    try:
        choose_precision(settings.models.precision)
    except PrecisionError as exc:
        usage(str(exc))


def _existing(paths: list[Path]) -> list[Path]:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"{', '.join(missing)}: no such file or folder")
    return paths


@app.command()
@with_settings
@with_analysis
def run(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders (walked recursively).")],
    settings: AppSettings,
    analysis: Analysis,
    high_water: HighWater = defaults.HIGH_WATER,
    timeout_s: TimeoutS = None,
    workers: Workers = defaults.WORKERS,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Analyse again images whose current ok result (same sha256) is already in --storage."
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every submission.")] = False,
) -> None:
    """Analyse every image under PATHS with all stages as worker processes, then stop.

    Images that already have an ok result for the same bytes in --storage are kept (--force
    analyses them again). Every image's result ends in --storage, whichever sink wrote it.
    Exit 0 when every image is ok, 3 when it finished but some images have error results,
    1 when it could not run, 130 on Ctrl-C (what was done is kept; run again to finish).
    """
    from faces.ops.cli.progress import BarDisplay
    from faces.ops.jobs.run import JobInterrupted, JobOptions, describe_agegender, run_job
    from faces.ops.supervise.counts import parse_counts
    from faces.producer.files import scan

    logs.configure(level="INFO" if verbose else "WARNING")
    _check_precision(settings)
    check_folders(settings, analysis.visualize)
    if not scan(_existing(paths)).images:
        fail(f"no images under {', '.join(map(str, paths))} (jpg, png and the other formats OpenCV reads)")
    options = JobOptions(
        high_water=high_water,
        timeout_s=timeout_s,
        force=force,
        output=settings.output if analysis.visualize else None,
        counts=parse_counts(workers, recognition=analysis.recognition),
        # A short blocking read lets the workers notice the stop quickly.
        worker_args=_with_block_ms(analysis.worker_args(settings), 200),
    )
    try:
        with BarDisplay() as display:
            summary = run_job(settings, list(paths), options, display)
    except JobInterrupted as stopped:
        done = stopped.summary
        typer.echo(
            f"interrupted: {done.finished} of {stopped.total} images have results ({done.ok} ok, "
            f"{done.error + done.dead} failed); {stopped.total - done.finished} left"
            + (f" ({done.withdrawn} withdrawn from the queue)" if done.withdrawn else "")
            + ": run the same command again to analyse only those",
            err=True,
        )
        raise typer.Exit(exits.INTERRUPTED) from None  # the lines above said it all
    if summary.submitted:
        typer.echo(
            f"{count(summary.submitted, 'image')}: {summary.outcomes()}; {count(summary.faces, 'face')}; "
            f"{count(summary.skipped, 'other file')} skipped; {summary.seconds:.1f} s"
        )
    if summary.taken_over:
        typer.echo(
            f"{count(summary.taken_over, 'image')} still in the pipeline from an earlier run: "
            "awaited, not submitted again"
        )
    if summary.already:
        typer.echo(
            f"{count(summary.already, 'image')} already had a current result in {settings.storage}/ "
            "(--force analyses them again)"
        )
    if summary.submitted:
        typer.echo(describe_agegender(summary.agegender_models))
    for note in sorted(summary.model_notes):
        typer.echo(f"  warning: {note}")
    for path, reason in summary.errors:
        typer.echo(f"  error: {path}: {reason}")
    typer.echo(f"results: {settings.storage}/" + (f"  pictures: {settings.output}/" if analysis.visualize else ""))
    raise typer.Exit(summary.exit_code)


def _with_block_ms(worker_args: dict[str, list[str]], block_ms: int) -> dict[str, list[str]]:
    return {**worker_args, "*": [*worker_args["*"], "--block-ms", str(block_ms)]}


@app.command()
@with_settings
@with_analysis
def up(
    settings: AppSettings,
    analysis: Analysis,
    high_water: HighWater = defaults.HIGH_WATER,
    workers: Workers = defaults.WORKERS,
    watch_dir: Annotated[Path | None, typer.Option("--watch", help="Also watch this drop folder.")] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve", help="Also serve the HTTP API (`faces serve`, docs/http.md); its log: STATE_DIR/logs/serve.log."
        ),
    ] = False,
    host: Host = defaults.HTTP_HOST,
    port: Port = defaults.HTTP_PORT,
) -> None:
    """Run every stage as worker processes until Ctrl-C (feed it with `faces submit`, --watch, --serve).

    Exit 1 when a worker cannot start or keeps failing (its own error line is printed)."""
    from faces.ops.cli.serve import check_server_process
    from faces.ops.jobs.up import UpOptions, up_job
    from faces.ops.supervise.counts import parse_counts

    # On a terminal its own lines say what happens; the workers' logs are in their files.
    logs.configure(terminal_level="WARNING")
    _check_precision(settings)
    # Every option and setting is checked before Redis or a worker starts: a refusal is one
    # line here, not a stack that stops (or dead-letters every image) once running.
    check_folders(settings, analysis.visualize)
    if watch_dir is not None and not watch_dir.is_dir():
        fail(f"{watch_dir} is not a folder")
    if serve:
        check_server_process(settings, host, port, high_water)
    options = UpOptions(
        counts=parse_counts(workers, recognition=analysis.recognition),
        worker_args=analysis.worker_args(settings),
        high_water=high_water,
        watch_dir=watch_dir,
        api_at=(host, port) if serve else None,
    )
    up_job(settings, options, say=lambda line: typer.echo(line, err=True))


@app.command()
@with_settings
@with_runtime
def worker(
    stage: Annotated[str, typer.Argument(help=" | ".join(STAGE_ORDER))],
    settings: AppSettings,
    consumer: ConsumerName = None,
    *,
    runtime_options: dict[str, Any],
    detector: Detector = None,
    min_face_score: MinFaceScore = None,
    agegender: AgeGender = None,
    landmarks: Landmarks = None,
    recognition: Recognition = defaults.RECOGNITION,
    keep_descriptors: KeepDescriptors = False,
    vector_index: VectorIndex = defaults.VECTOR_INDEX,
    visualize: Visualize = True,
    metrics_port: MetricsPort = None,
) -> None:
    """Run one stage consumer (what a container runs); any number may run against one Redis.

    Without --redis-url it attaches to the embedded server of `faces up` on --state-dir.
    Exit 0 after a clean stop, 4 when SIGTERM's grace period ran out, 5 when its consumer
    group was lost, 6 when a batch ran past --batch-limit-s, 1 when it could not start (one
    `worker.failed` log line says why)."""
    from faces.ops.failures import describe_failure
    from faces.ops.jobs.target import attach_url
    from faces.ops.supervise.worker import run_worker
    from faces.streams.settings import RuntimeSettings, SettingsError

    if stage not in STAGE_ORDER:
        usage(f"unknown stage {stage!r}; expected one of {', '.join(STAGE_ORDER)}")
    logs.configure()
    _check_precision(settings)
    if stage == "sink":  # the one stage that writes files: refused now, not at every image
        check_folders(settings, visualize)
    try:
        runtime = RuntimeSettings(**runtime_options)
    except SettingsError as exc:
        usage(str(exc))
    options = {
        "storage": settings.storage,
        "output": settings.output if visualize else None,
        "detector": detector,
        "agegender": agegender,
        "landmarks": landmarks,
        "min_score": min_face_score,
        "recognition": recognition,
        "keep_descriptors": keep_descriptors,
        "vector_index": vector_index,
        # What the models take from the environment, read by this command (the pool starts each
        # worker with the environment of `faces run` / `up`): passed down, never read below.
        "models": settings.models,
    }
    try:
        # Never start an embedded Redis here: it would stop on exit under the other workers.
        url = attach_url(settings)
        code = run_worker(stage, url, runtime, consumer, options, metrics_port=metrics_port)
    except Exception as exc:  # noqa: BLE001 - a worker's last word is one JSON log line
        if debug_enabled():
            raise
        import structlog

        code, line = describe_failure(exc)
        structlog.get_logger(__name__).error("worker.failed", error=line, error_type=type(exc).__name__)
    # Everything is acknowledged and logged; skip the interpreter's teardown, which takes
    # about a second once TensorFlow is loaded (measured by `faces bench`).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@app.command()
@with_settings
def watch(
    folder: Annotated[Path, typer.Argument(help="The drop folder.")],
    settings: AppSettings,
    force: Annotated[bool, typer.Option(help="Analyse bytes seen before again.")] = False,
    settle_s: Annotated[
        float,
        typer.Option(
            envvar="FACES_SETTLE_S", min=0.0, help="A file must keep its size and mtime this long before it is read."
        ),
    ] = defaults.SETTLE_S,
    high_water: HighWater = defaults.HIGH_WATER,
) -> None:
    """Publish each new image dropped into FOLDER exactly once, until Ctrl-C or SIGTERM. Needs a
    running pipeline (`faces up`, or --redis-url); `faces up --watch FOLDER` runs both."""
    from faces.ops.jobs.target import attached
    from faces.producer.watch import Watcher

    logs.configure()
    if not folder.is_dir():
        fail(f"{folder} is not a folder")
    with attached(settings) as (_url, client):
        watcher = None
        try:  # Ctrl-C may come while the watcher waits for Redis, even while it starts
            watcher = Watcher(client, folder, settle_s=settle_s, force=force, high_water=high_water)
            watcher.run(should_stop=interrupts.requested)
        except KeyboardInterrupt:
            pass
    if watcher is not None:
        typer.echo(f"published {watcher.published}; {count(watcher.duplicates, 'duplicate')} skipped", err=True)


@app.command()
@with_settings
def submit(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    settings: AppSettings,
    high_water: HighWater = defaults.HIGH_WATER,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Wait for the results and print each one's JSON (one line each) as it arrives."),
    ] = False,
    timeout_s: TimeoutS = None,
) -> None:
    """Publish image files (or every image under folders) to a running pipeline (`faces up`,
    or --redis-url). Prints `IMAGE_ID<TAB>PATH` per image; with --wait, each result's JSON.

    Exit 1 when nothing could be submitted (missing paths, no images, no pipeline running);
    with --wait, 3 when some results are errors."""
    from faces.ops.jobs.run import JobOptions, JobSummary, wait_for_results
    from faces.ops.jobs.target import attached
    from faces.producer.files import scan
    from faces.producer.submit import submit_file
    from faces.streams import results

    logs.configure(level="WARNING")
    found = scan(_existing(paths))
    if not found.images:
        fail(f"no images under {', '.join(map(str, paths))} ({count(found.skipped, 'other file')})")
    with attached(settings) as (_url, client):
        cursors = results.cursors_now(client)
        waiting = {}
        for path in found.images:
            sent = submit_file(client, path, high_water=high_water)
            waiting[sent.job_id] = sent.path
            if not wait:
                typer.echo(f"{sent.image_id}\t{sent.path}")
        typer.echo(
            f"submitted {count(len(found.images), 'image')}; {count(found.skipped, 'other file')} skipped", err=True
        )
        if not wait:
            return
        summary = JobSummary(submitted=len(waiting))
        wait_for_results(
            client,
            waiting,
            cursors,
            summary,
            None,
            JobOptions(timeout_s=timeout_s, keep_results=False, on_result=typer.echo),
            lambda done, total: None,
            settings,
        )
    raise typer.Exit(summary.exit_code)


@app.command()
@with_settings
def status(
    settings: AppSettings,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    watch_s: Annotated[
        float | None, typer.Option("--watch", min=0.1, help="Redraw every this many seconds until Ctrl-C.")
    ] = None,
) -> None:
    """Per stream its length; per group pending, lag, consumers, throughput and oldest pending
    age; dead letters, images in flight, Redis memory. Needs a running pipeline."""
    from faces.ops.cli.statusview import render_status, watch_status
    from faces.ops.jobs.target import attached
    from faces.streams.status import pipeline_status

    logs.configure(level="WARNING")
    with attached(settings) as (_url, client):
        if watch_s:
            watch_status(lambda: pipeline_status(client), watch_s)
            return
        data = pipeline_status(client)
    typer.echo(json.dumps(data, indent=1) if as_json else render_status(data))
