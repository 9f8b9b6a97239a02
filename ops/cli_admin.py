"""`faces visualize`, `replay`, `trim`, `purge` and `faces dlq ...`: looking after results and history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from ops import logs
from ops.options import (DEFAULT_OUTPUT, DEFAULT_STATE_DIR, DEFAULT_STORAGE, Output, RedisUrl,
                         StateDir, Storage, app_settings)
from streams.settings import DEFAULT_RETENTION_S
from ops.cli_app import STAGES, app, fail

dlq_app = typer.Typer(no_args_is_help=True, help="The dead-letter stream: list, show, retry, drop.")
app.add_typer(dlq_app, name="dlq")


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
    from ops.target import StackAlreadyRunning
    from streams.errors import EmbeddedRedisError, RedisUnavailable

    logs.configure(level="WARNING")
    if from_stage not in STAGES:
        fail(f"unknown stage {from_stage!r}; expected one of {', '.join(STAGES)}")
    options = JobOptions(high_water=high_water, timeout_s=timeout_s, worker_args={
        "*": ["--storage", str(storage)], "sink": ["--output", str(output)]})
    try:
        with progress_printer("replaying") as on_progress:
            summary, skipped = replay_job(app_settings(redis_url, state_dir, storage, output), since=since,
                                          until=until, images=list(image or []), from_stage=from_stage,
                                          options=options, on_progress=on_progress)
    except (StackAlreadyRunning, RedisUnavailable, EmbeddedRedisError) as exc:
        fail(str(exc))
    typer.echo(f"replayed {summary.submitted} images from {from_stage}: {summary.ok} ok, "
               f"{summary.error} error, {summary.dead} dead-lettered; {len(skipped)} not replayable")
    for name, reason in skipped + summary.errors:
        typer.echo(f"  {name}: {reason}")
    raise typer.Exit(3 if skipped or summary.exit_code else 0)


@app.command()
def trim(
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
    retention_s: Annotated[float, typer.Option(envvar="FACES_RETENTION_S", help="History the images stream keeps for replay.")] = DEFAULT_RETENTION_S,
) -> None:
    """Trim every stream now, never below what a group has not acknowledged."""
    from ops.target import redis_target
    from streams.history import trim_all

    logs.configure(level="WARNING")
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        removed = trim_all(client, retention_s)
    for stream, count in removed.items():
        typer.echo(f"{stream}: {count} entries removed")


@app.command("recreate-group")
def recreate_group(
    stage: Annotated[str, typer.Argument(help="detect | landmarks | agegender | sink")],
    redis_url: RedisUrl = None, state_dir: StateDir = DEFAULT_STATE_DIR,
    storage: Storage = DEFAULT_STORAGE, output: Output = DEFAULT_OUTPUT,
) -> None:
    """Re-create a stage's lost consumer group at the END of its stream (new entries only).

    Workers stop, naming this command, when their group vanished from a stream with history:
    re-creating it at the start would reprocess all of that history. Afterwards reprocess the
    window you need with `faces replay --since TIME`.
    """
    from ops.target import redis_target
    from streams import groups, names

    if stage not in STAGES:
        fail(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    logs.configure(level="WARNING")
    route = names.route(stage)
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        created = groups.recreate_group(client, route.input_stream, route.group)
    typer.echo(f"group {route.group} on {route.input_stream}: "
               + ("created at the end of the stream" if created else "exists already; nothing done"))


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
        fail("purge deletes every stream, stored result and dedupe memory; repeat with --yes")
    logs.configure(level="WARNING")
    with redis_target(app_settings(redis_url, state_dir, storage, output)) as (_url, client, _server):
        typer.echo(f"{purge_keys(client)} keys deleted")


def _letters(client, ids: list[str], every: bool):
    from streams import deadletters

    if every:
        return deadletters.list_all(client, limit=1_000_000)
    if not ids:
        fail("name dead-letter ids, or --all")
    letters = [deadletters.get(client, i) for i in ids]
    missing = [i for i, letter in zip(ids, letters) if letter is None]
    if missing:
        fail(f"no dead letter {', '.join(missing)}")
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
