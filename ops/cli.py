"""`faces`: the command line. Logging is configured here, and only here."""

from __future__ import annotations

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

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Face analysis pipeline on Redis Streams: boxes, 68 landmarks, pose, age, gender.")
models_app = typer.Typer(no_args_is_help=True, help="Model files: check what is there, fetch what is missing.")
app.add_typer(models_app, name="models")
dlq_app = typer.Typer(no_args_is_help=True, help="The dead-letter stream: list, show, retry, drop.")
app.add_typer(dlq_app, name="dlq")

STAGES = ("detect", "landmarks", "agegender", "sink")
EXIT_FAILED = 1


def _sigterm_as_interrupt() -> None:
    """SIGTERM (docker stop, kill) stops `run` / `up` like Ctrl-C: workers, then Redis."""
    import signal

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_FAILED)


def _check_model_environment() -> None:
    """Refuse a bad $FACES_AGEGENDER_PRECISION here, not in a worker that would crash-loop."""
    from models.precision import PrecisionError, choose_precision

    try:
        choose_precision()
    except PrecisionError as exc:
        _fail(str(exc))


@app.command()
def run(
    paths: Annotated[List[Path], typer.Argument(help="Image files or folders (walked recursively).")],
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
    visualize: Annotated[bool, typer.Option(help="Draw annotated pictures into --output.")] = True,
    batch: Annotated[int, typer.Option(envvar="FACES_BATCH", help="Entries per stage batch.")] = 8,
    detector: Annotated[Optional[str], typer.Option(envvar="FACES_DETECTOR", help="Detection backend.")] = None,
    high_water: Annotated[int, typer.Option(envvar="FACES_HIGH_WATER", help="Submission waits while this many images are in flight (0: no limit).")] = 500,
    timeout_s: Annotated[Optional[float], typer.Option(help="Give up if not all images have results by then.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every submission.")] = False,
) -> None:
    """Analyse every image under PATHS with all stages as worker processes, then stop.

    Exit 0 when every image is ok, 3 when it finished but some images have error results,
    1 when it could not run.
    """
    from ops.runjob import JobOptions, JobTimeout, run_job
    from ops.progress import progress_printer
    from streams.errors import EmbeddedRedisError, RedisUnavailable

    logs.configure(level="INFO" if verbose else "WARNING")
    _sigterm_as_interrupt()
    _check_model_environment()
    for path in paths:
        if not path.exists():
            _fail(f"{path} does not exist")
    app_cfg = app_settings(redis_url, state_dir, storage, output)
    # A short blocking read lets the workers notice the stop quickly at the end of the job.
    worker_args = {"*": ["--batch", str(batch), "--storage", str(storage), "--block-ms", "200"],
                   "sink": ["--output", str(output)] if visualize else ["--no-visualize"]}
    if detector:
        worker_args["detect"] = ["--detector", detector]
    try:
        with progress_printer("analysing") as on_progress:
            summary = run_job(app_cfg, list(paths), JobOptions(high_water=high_water, timeout_s=timeout_s,
                                                               worker_args=worker_args), on_progress)
    except (RedisUnavailable, EmbeddedRedisError, JobTimeout) as exc:
        _fail(str(exc))
    typer.echo(
        f"{summary.submitted} images: {summary.ok} ok, {summary.error} error, {summary.dead} dead-lettered; "
        f"{summary.faces} faces; {summary.skipped} other files skipped; {summary.seconds:.1f} s"
    )
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
) -> None:
    """Run every stage as worker processes until Ctrl-C (feed it with `faces submit`, or --watch)."""
    from ops.target import redis_target
    from ops.workers import WorkerPool
    from producer.watch import Watcher
    from streams.connection import redact

    logs.configure()
    _sigterm_as_interrupt()
    _check_model_environment()
    if watch_dir is not None and not watch_dir.is_dir():
        _fail(f"{watch_dir} is not a folder")
    app_cfg = app_settings(redis_url, state_dir, storage, output)
    with redis_target(app_cfg) as (url, client, _server):
        pool = WorkerPool(url, app_cfg.log_dir, extra_args={
            "*": ["--batch", str(batch), "--storage", str(storage)], "sink": ["--output", str(output)]})
        pool.start()
        watcher = Watcher(client, watch_dir) if watch_dir is not None else None
        typer.echo(f"stack up on {redact(url)}; worker logs in {app_cfg.log_dir}"
                   + (f"; watching {watch_dir}" if watcher else "") + "; Ctrl-C to stop", err=True)
        try:
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
    retention_s: Annotated[float, typer.Option(envvar="FACES_RETENTION_S", help="History the images stream keeps for replay.")] = 7 * 86400,
    burst: Annotated[bool, typer.Option(help="Exit once the input stream is drained.")] = False,
    detector: Annotated[Optional[str], typer.Option(envvar="FACES_DETECTOR", help="Detection backend (detect stage).")] = None,
    visualize: Annotated[bool, typer.Option(envvar="FACES_VISUALIZE", help="Sink: draw annotated pictures into --output.")] = True,
) -> None:
    """Run one stage consumer (what a container runs); any number may run against one Redis."""
    from ops.target import redis_target
    from ops.worker import run_worker
    from streams.settings import RuntimeSettings, SettingsError

    if stage not in STAGES:
        _fail(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    logs.configure()
    _check_model_environment()
    try:
        settings = RuntimeSettings(batch=batch, block_ms=block_ms, claim_idle_ms=claim_idle_ms,
                                   max_deliveries=max_deliveries, grace_s=grace_s,
                                   retention_s=retention_s, burst=burst)
    except SettingsError as exc:
        _fail(str(exc))
    options = {"storage": storage, "output": output if visualize else None, "detector": detector}
    if redis_url:
        code = run_worker(stage, redis_url, settings, consumer, options)
        # Everything is acknowledged and logged; skip the interpreter's teardown, which takes
        # about a second once TensorFlow is loaded (measured by `faces bench`).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    app_cfg = app_settings(redis_url, state_dir, storage, output)
    with redis_target(app_cfg) as (url, _client, _server):
        raise typer.Exit(run_worker(stage, url, settings, consumer, options))


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
        _fail(f"{folder} is not a folder")
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        watcher = Watcher(client, folder, settle_s=settle_s, force=force, high_water=high_water)
        try:
            watcher.run()
        except KeyboardInterrupt:
            pass
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


@app.command()
def visualize(
    storage_arg: Annotated[Optional[Path], typer.Argument(metavar="[STORAGE]", help="Folder of result JSON files (default: --storage).")] = None,
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
) -> None:
    """Draw each result's boxes, 68 points and age/gender label on its source photo."""
    from ops.visualize import visualize_folder

    logs.configure(level="WARNING")
    drawn, missing = visualize_folder(storage_arg or storage, output)
    typer.echo(f"{drawn} pictures in {output}/; {missing} results whose photo could not be read")


@app.command()
def replay(
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
    since: Annotated[Optional[str], typer.Option(help="ISO time or stream id: replay submissions from then.")] = None,
    until: Annotated[Optional[str], typer.Option(help="ISO time or stream id: ... up to then.")] = None,
    image: Annotated[Optional[List[str]], typer.Option("--image", help="Path, image id or sha256 prefix (repeatable).")] = None,
    from_stage: Annotated[str, typer.Option(help="Re-run only the stages from this one on, starting from the stored result.")] = "detect",
    high_water: Annotated[int, typer.Option(envvar="FACES_HIGH_WATER")] = 500,
    timeout_s: Annotated[Optional[float], typer.Option()] = None,
) -> None:
    """Re-publish submitted images for reprocessing; results are overwritten in place.

    With no workers attached (the embedded default), starts them, waits and stops them.
    Exit 0 when all replayed images are ok, 3 when some are not (or could not be replayed).
    """
    from ops.progress import progress_printer
    from ops.replayjob import replay_job
    from ops.runjob import JobOptions

    logs.configure(level="WARNING")
    if from_stage not in STAGES:
        _fail(f"unknown stage {from_stage!r}; expected one of {', '.join(STAGES)}")
    options = JobOptions(high_water=high_water, timeout_s=timeout_s, worker_args={
        "*": ["--storage", str(storage)], "sink": ["--output", str(output)]})
    with progress_printer("replaying") as on_progress:
        summary, skipped = replay_job(app_settings(redis_url, state_dir, storage, output), since=since,
                                      until=until, images=list(image or []), from_stage=from_stage,
                                      options=options, on_progress=on_progress)
    typer.echo(f"replayed {summary.submitted} images from {from_stage}: {summary.ok} ok, "
               f"{summary.error} error, {summary.dead} dead-lettered; {len(skipped)} not replayable")
    for name, reason in skipped + summary.errors:
        typer.echo(f"  {name}: {reason}")
    raise typer.Exit(3 if skipped or summary.exit_code else 0)


@app.command()
def trim(
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
    retention_s: Annotated[float, typer.Option(envvar="FACES_RETENTION_S", help="History the images stream keeps for replay.")] = 7 * 86400,
) -> None:
    """Trim every stream now, never below what a group has not acknowledged."""
    from ops.target import redis_target
    from streams.history import trim_all

    logs.configure(level="WARNING")
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        removed = trim_all(client, retention_s)
    for stream, count in removed.items():
        typer.echo(f"{stream}: {count} entries removed")


@app.command()
def purge(
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete every stream, result and memory.")] = False,
) -> None:
    """Delete all pipeline state in Redis (files in --storage and --output are kept)."""
    from ops.target import redis_target
    from streams.history import purge as purge_keys

    if not yes:
        _fail("purge deletes every stream, stored result and dedupe memory; repeat with --yes")
    logs.configure(level="WARNING")
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        typer.echo(f"{purge_keys(client)} keys deleted")


@app.command()
def bench(
    folder: Annotated[Path, typer.Argument(help="Folder of photos to analyse on both sides.")],
    synthetic_weights: Annotated[bool, typer.Option("--synthetic-weights", help="Use random weight files with DeepFace's layout (shared and separate trunks) instead of the real ones: timing does not depend on the values.")] = False,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write every figure, with machine facts, to this JSON file.")] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Repeat each warm measurement this many times and keep the median (cold runs happen once).")] = 1,
) -> None:
    """Benchmark this pipeline against DeepFace.analyze's own loop on the same photos: cold and
    warm end to end, each stage alone, backbone overhead, batching, and one transport hop."""
    from ops.bench import BenchInputError, run_bench
    from ops.bench_report import render_rich

    logs.configure(level="WARNING")
    if not folder.is_dir():
        _fail(f"{folder} is not a folder")
    try:
        figures = run_bench(folder, synthetic_weights, repeat, say=lambda line: typer.echo(f"bench: {line}", err=True))
    except BenchInputError as exc:
        _fail(str(exc))
    render_rich(figures)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(figures, indent=1, default=str))
        typer.echo(f"figures: {json_path}", err=True)
    missed = [t["name"] for t in figures["derived"]["targets"] if not t["met"]]
    typer.echo(f"targets missed: {'; '.join(missed)}" if missed else "all targets met", err=True)


@models_app.command("check")
def models_check(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List every model file the pipeline uses: path, size, sha256, status. Exit 1 if a
    required file is missing."""
    from models.weights import check_model_files

    files = check_model_files()
    if as_json:
        typer.echo(json.dumps([{**f.__dict__, "path": str(f.path)} for f in files], indent=1))
    else:
        for f in files:
            size = f"{f.size / 1e6:8.1f} MB" if f.size else "       -   "
            typer.echo(f"{f.status:17} {size}  {f.name:28} {f.path}  {f.sha256 or ''}")
    if any(f.status == "missing" for f in files):
        raise typer.Exit(EXIT_FAILED)


@models_app.command("fetch")
def models_fetch() -> None:
    """Download the missing DeepFace age and gender weights (about 540 MB each)."""
    from models.weights import FetchFailed, fetch_missing
    from ops.progress import download_progress

    with download_progress() as progress:
        try:
            fetched = fetch_missing(progress=progress)
        except FetchFailed as exc:
            _fail(str(exc))
    typer.echo(f"fetched {len(fetched)} files" if fetched else "nothing to fetch: all files present")


def _letters(client, ids: list[str], every: bool):
    from streams import deadletters

    if every:
        return deadletters.list_all(client, limit=1_000_000)
    if not ids:
        _fail("name dead-letter ids, or --all")
    letters = [deadletters.get(client, i) for i in ids]
    missing = [i for i, letter in zip(ids, letters) if letter is None]
    if missing:
        _fail(f"no dead letter {', '.join(missing)}")
    return letters


@dlq_app.command("list")
def dlq_list(redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
             storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
             as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One line per dead letter: id, stage, deliveries, error, image."""
    from ops.target import redis_target
    from streams import deadletters

    logs.configure(level="WARNING")
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        letters = deadletters.list_all(client)
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in l.__dict__.items() if k != "payload"} for l in letters], indent=1))
        return
    for l in letters:
        typer.echo(f"{l.id}  {l.stage:9} x{l.deliveries}  {l.error_type}: {l.message}  [{l.image_id or '?'}]")
    typer.echo(f"{len(letters)} dead letters", err=True)


@dlq_app.command("show")
def dlq_show(dead_id: str, redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
             storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT) -> None:
    """Everything about one dead letter, with its event decoded when it can be."""
    from ops.target import redis_target
    from schemas import events

    logs.configure(level="WARNING")
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        letter = _letters(client, [dead_id], False)[0]
    shown = {k: v for k, v in letter.__dict__.items() if k != "payload"}
    try:
        shown["event"] = events.decode(letter.payload) if letter.payload else None
    except events.EventError as exc:
        shown["event"] = f"undecodable ({exc}); {len(letter.payload)} bytes"
    typer.echo(json.dumps(shown, indent=1, default=str))


@dlq_app.command("retry")
def dlq_retry(ids: Annotated[Optional[List[str]], typer.Argument()] = None,
              every: Annotated[bool, typer.Option("--all")] = False,
              redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
              storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT) -> None:
    """Put dead letters back on the stream they failed on (their stage retries them)."""
    from ops.target import redis_target
    from producer.redrive import RetryError, retry_letter

    logs.configure(level="WARNING")
    failed = 0
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        for letter in _letters(client, list(ids or []), every):
            try:
                typer.echo(f"{letter.id} -> {letter.stream} {retry_letter(client, letter)}")
            except RetryError as exc:
                failed += 1
                typer.echo(f"{letter.id}: {exc}", err=True)
    raise typer.Exit(3 if failed else 0)


@dlq_app.command("drop")
def dlq_drop(ids: Annotated[Optional[List[str]], typer.Argument()] = None,
             every: Annotated[bool, typer.Option("--all")] = False,
             redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
             storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT) -> None:
    """Delete dead letters."""
    from ops.target import redis_target
    from streams import deadletters

    logs.configure(level="WARNING")
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        dropped = deadletters.drop(client, [l.id for l in _letters(client, list(ids or []), every)])
    typer.echo(f"{dropped} dead letters dropped")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
