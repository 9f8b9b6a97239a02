"""`faces visualize`, `result`, `replay`, `trim`, `recreate-group`, `purge` and `faces dlq ...`:
looking after results and history.

Every command here but `visualize` and `result` works on a running pipeline's Redis, so it
attaches to one (ops/jobs/target.py `attached`) and never starts an embedded server: one started here
would hold no history, no results and no dead letters, and would be stopped again at once."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from faces import logs
from faces import settings as defaults
from faces.ops import exits, interrupts
from faces.ops.cli.application import app, fail, usage
from faces.ops.cli.options import Analysis, HighWater, TimeoutS, check_folders, with_analysis, with_settings
from faces.ops.cli.wording import count, iso_time
from faces.ops.settings import AppSettings
from faces.producer.replay import IMAGE_FORMS, TIME_FORMS, BadSelection, ImageNotFound
from faces.schemas.job import Job
from faces.streams.names import STAGE_ORDER

dlq_app = typer.Typer(no_args_is_help=True, help="The dead-letter stream: list, show, retry, drop.")
app.add_typer(dlq_app, name="dlq")

Stage = Literal[STAGE_ORDER]  # type: ignore[valid-type]  # typer lists the choices in --help and refuses others (exit 2)

DeadIds = Annotated[
    list[str] | None,
    typer.Argument(metavar="ID", help="Dead-letter ids, as `faces dlq list` shows them.", show_default=False),
]
Every = Annotated[bool, typer.Option("--all", help="Every dead letter, instead of naming ids.")]


def _attached(settings: AppSettings):
    """The running pipeline's (url, client); one line naming `faces up` when none runs."""
    from faces.ops.jobs.target import attached

    return attached(settings)


@contextlib.contextmanager
def _selecting() -> Iterator[None]:
    """Images named that select nothing are a failure (exit 1); a time, a prefix that cannot
    select one image is bad usage (exit 2). Both messages name the value and the accepted forms."""
    try:
        yield
    except BadSelection as exc:
        usage(str(exc))
    except ImageNotFound as exc:
        fail(str(exc))


@app.command()
@with_settings
def visualize(
    storage_arg: Annotated[
        Path | None, typer.Argument(metavar="[STORAGE]", help="Folder of result JSON files (default: --storage).")
    ] = None,
    *,
    settings: AppSettings,
) -> None:
    """Draw each result's boxes, 68 points and age/gender label on its source photo.

    Exit 0 when every ok result was drawn, 3 when some could not be (each is named), 1 when
    STORAGE is not a folder.
    """
    from faces.ops.jobs.visualize import visualize_folder

    logs.configure(level="WARNING")
    folder = storage_arg or settings.storage
    if not folder.is_dir():
        fail(f"{folder} is not a folder: give the --storage folder of a `faces run` or `faces up`")
    done = visualize_folder(folder, settings.output)
    typer.echo(
        f"{count(done.drawn, 'picture')} in {settings.output}/; "
        f"{count(len(done.unreadable), 'result')} could not be drawn"
    )
    for line in done.unreadable:
        typer.echo(f"  {line}")
    raise typer.Exit(exits.SOME_ERRORS if done.unreadable else exits.OK)


@app.command()
@with_settings(output=False)
def result(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help=f"The image: {IMAGE_FORMS}.")],
    settings: AppSettings,
) -> None:
    """Print one image's stored result: its JSON document.

    From the running pipeline's Redis, else from --storage (so it works after `faces run`
    stopped). A sha256 (prefix) of bytes submitted under several names gives the latest of
    them (stderr names the others). Exit 1 when no result is found, 2 when IMAGE is a too short
    prefix or one that matches images of different bytes.
    """
    from faces.ops.jobs.lookup import find_result

    logs.configure(level="WARNING")
    with _selecting():
        text, note = find_result(settings, image)
    if note:
        typer.echo(f"note: {note}", err=True)
    typer.echo(text)


@app.command()
@with_settings
@with_analysis
def replay(
    settings: AppSettings,
    since: Annotated[str | None, typer.Option(help=f"Replay what was submitted from then on: {TIME_FORMS}.")] = None,
    until: Annotated[str | None, typer.Option(help=f"Replay what was submitted up to then: {TIME_FORMS}.")] = None,
    image: Annotated[
        list[str] | None, typer.Option("--image", help=f"Replay only this image: {IMAGE_FORMS} (repeatable).")
    ] = None,
    from_stage: Annotated[
        Stage, typer.Option(help="Re-run only the stages from this one on, starting from the stored result.")
    ] = "detect",
    high_water: HighWater = defaults.HIGH_WATER,
    timeout_s: TimeoutS = None,
    *,
    analysis: Analysis,
) -> None:
    """Re-publish submitted images for reprocessing; results are overwritten in place.

    The analysis options (--detector, --landmarks, --agegender, --batch, --visualize) apply to the workers
    replay starts itself; workers already attached keep their own.

    Uses the running pipeline (`faces up`, or --redis-url); when a stage it needs has no live
    worker (heartbeats) it starts workers, waits and stops them. With nothing running on a
    --state-dir where `faces run` ran, it starts that embedded Redis too, as `run` does.

    Exit 0 when all replayed images are ok, 3 when some are not or could not be replayed (each
    is named), 1 when an image named is not found, 2 for a bad time or a too short or ambiguous
    sha256 prefix.
    """
    from faces.ops.cli.progress import BarDisplay
    from faces.ops.jobs.replay import replay_job
    from faces.ops.jobs.run import JobOptions
    from faces.producer.replay import check_selection

    logs.configure(level="WARNING")
    check_folders(settings, analysis.visualize)  # its results and pictures are written again
    options = JobOptions(
        high_water=high_water,
        timeout_s=timeout_s,
        output=settings.output if analysis.visualize else None,
        worker_args=analysis.worker_args(settings),
    )
    with _selecting():
        check_selection(since, until, image or [])  # before anything is attached or started
        with BarDisplay() as display:
            display.phase("replaying")
            summary, skipped = replay_job(
                settings,
                since=since,
                until=until,
                images=list(image or []),
                from_stage=from_stage,
                options=options,
                on_progress=lambda done, total: display.count(done, total, 0),
            )
    typer.echo(
        f"replayed {count(summary.submitted, 'image')} from {from_stage}: {summary.outcomes()}; "
        f"{len(skipped)} not replayable"
    )
    for name, reason in skipped + summary.errors:
        typer.echo(f"  {name}: {reason}")
    raise typer.Exit(exits.SOME_ERRORS if skipped else summary.exit_code)


@app.command()
@with_settings
def trim(
    settings: AppSettings,
    retention_s: Annotated[
        float,
        typer.Option(
            envvar="FACES_RETENTION_S", show_envvar=True, help="Seconds of history the images stream keeps for replay."
        ),
    ] = defaults.RETENTION_S,
) -> None:
    """Trim every stream now, never below what a group has not acknowledged."""
    from faces.streams.history import trim_all

    logs.configure(level="WARNING")
    with _attached(settings) as (_url, client):
        removed = trim_all(client, retention_s)
    for stream, removed_here in removed.items():
        typer.echo(f"{stream}: {count(removed_here, 'entry', 'entries')} removed")


@app.command("recreate-group")
@with_settings
def recreate_group(
    stage: Annotated[Stage, typer.Argument(help="The stage whose group was lost.")],
    settings: AppSettings,
) -> None:
    """Re-create a stage's lost consumer group at the END of its stream (new entries only).

    Workers stop, naming this command, when their group vanished from a stream with history:
    re-creating it at the start would reprocess all of that history. Afterwards reprocess the
    window you need with `faces replay --since TIME`.
    """
    from faces.streams import groups, names

    logs.configure(level="WARNING")
    route = names.route(stage)
    with _attached(settings) as (_url, client):
        created = groups.recreate_group(client, route.input_stream, route.group)
    typer.echo(
        f"group {route.group} on {route.input_stream}: "
        + ("created at the end of the stream" if created else "exists already; nothing done")
    )


@app.command()
@with_settings
def purge(
    settings: AppSettings,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete every stream, result and memory.")] = False,
    people: Annotated[
        bool, typer.Option("--people", help="Also delete the people recognition knows, their faces and corrections.")
    ] = False,
) -> None:
    """Delete all pipeline state in Redis (files in --storage and --output are kept; the people
    recognition knows too, unless --people)."""
    from faces.streams.history import purge as purge_keys

    if not yes:
        usage("purge deletes every stream, stored result and dedupe memory; repeat with --yes")
    logs.configure(level="WARNING")
    with _attached(settings) as (_url, client):
        typer.echo(f"{count(purge_keys(client, people=people), 'key')} deleted")


def _check_named(ids: list[str], every: bool) -> None:
    """Ids or --all, checked before Redis is attached: a usage mistake is not a Redis problem."""
    if every and ids:
        usage("name dead-letter ids or give --all, not both")
    if not every and not ids:
        usage("name dead-letter ids (see `faces dlq list`), or --all")


def _letters(client, ids: list[str], every: bool):
    """The dead letters named (all with `every`); one line, exit 1, naming those that do not exist."""
    from faces.streams import deadletters

    if every:
        return deadletters.list_all(client, limit=1_000_000)
    letters = [deadletters.get(client, i) for i in ids]
    missing = [i for i, letter in zip(ids, letters) if letter is None]
    if missing:
        fail(f"no dead letter {', '.join(missing)}: `faces dlq list` shows the ids")
    return letters


def _shown(letter) -> dict:
    """A dead letter as printed, without its payload, its time (`at`) as ISO 8601 UTC like the
    results' times. `deliveries` counts the times the stage was handed the entry: the number
    its message speaks of (streams/deadletters.py)."""
    shown = {k: v for k, v in letter.__dict__.items() if k != "payload"}
    return {**shown, "at": iso_time(letter.at)}


@dlq_app.command("list")
@with_settings
def dlq_list(
    settings: AppSettings,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array (payloads left out) instead of one line each.")
    ] = False,
) -> None:
    """One line per dead letter: id, stage, deliveries, error, image."""
    from faces.streams import deadletters

    logs.configure(level="WARNING")
    with _attached(settings) as (_url, client):
        letters = deadletters.list_all(client)
    if as_json:
        typer.echo(json.dumps([_shown(letter) for letter in letters], indent=1))
        return
    for letter in letters:
        typer.echo(
            f"{letter.id}  {letter.stage:9} x{letter.deliveries}  {letter.error_type}: {letter.message}  "
            f"[{letter.image_id or '?'}]"
        )
    typer.echo(count(len(letters), "dead letter"), err=True)


@dlq_app.command("show")
@with_settings
def dlq_show(
    dead_id: Annotated[str, typer.Argument(metavar="ID", help="The dead letter's id, as `faces dlq list` shows it.")],
    settings: AppSettings,
) -> None:
    """Everything about one dead letter, with its event decoded when it can be."""
    from faces.schemas import events

    logs.configure(level="WARNING")
    with _attached(settings) as (_url, client):
        letter = _letters(client, [dead_id], False)[0]
    shown = _shown(letter)
    try:
        shown["event"] = _with_iso_times(events.decode(letter.payload)) if letter.payload else None
    except events.EventError as exc:
        shown["event"] = f"undecodable ({exc}); {len(letter.payload)} bytes"
    typer.echo(json.dumps(shown, indent=1, default=str))


def _with_iso_times(event: Job) -> dict[str, Any]:
    """The event with its submission time (epoch seconds in the event) as ISO 8601 UTC."""
    at = event.get("submitted_at")
    return {**event, "submitted_at": iso_time(at)} if isinstance(at, (int, float)) else event


class _SaidOnce:
    """A producer's while_waiting that says why it waits, once, on stderr, and stops on Ctrl-C:
    `dlq retry` at the high-water mark (often when slots leaked) must not block in silence."""

    def __init__(self, text: str):
        self.text = text
        self.said = False

    def __call__(self) -> None:
        interrupts.raise_if_requested()
        if not self.said:
            self.said = True
            typer.echo(self.text, err=True)


@dlq_app.command("retry")
@with_settings
def dlq_retry(
    ids: DeadIds = None, every: Every = False, high_water: HighWater = defaults.HIGH_WATER, *, settings: AppSettings
) -> None:
    """Put dead letters back on the stream they failed on (their stage retries them), waiting
    while --high-water images are in flight, as every submission does.

    Exit 3 when some could not be retried (each is named).
    """
    from faces.producer.redrive import RetryError, retry_letter

    _check_named(list(ids or []), every)
    logs.configure(level="WARNING")
    failed = 0
    with _attached(settings) as (_url, client):
        waiting = _SaidOnce(
            f"waiting for room: {high_water} or more images are in flight (--high-water); "
            "Ctrl-C stops (what was retried stays retried)"
        )
        for letter in _letters(client, list(ids or []), every):
            try:
                requeued = retry_letter(client, letter, high_water=high_water, while_waiting=waiting)
                typer.echo(f"{letter.id} -> {letter.stream} {requeued}")
            except RetryError as exc:
                failed += 1
                typer.echo(f"{letter.id}: {exc}", err=True)
    raise typer.Exit(exits.SOME_ERRORS if failed else exits.OK)


@dlq_app.command("drop")
@with_settings
def dlq_drop(ids: DeadIds = None, every: Every = False, *, settings: AppSettings) -> None:
    """Delete dead letters."""
    from faces.streams import deadletters

    _check_named(list(ids or []), every)
    logs.configure(level="WARNING")
    with _attached(settings) as (_url, client):
        dropped = deadletters.drop(client, [letter.id for letter in _letters(client, list(ids or []), every)])
    typer.echo(f"{count(dropped, 'dead letter')} dropped")
