"""`faces health`: are the workers consuming? Reads the heartbeats (streams/heartbeat.py) that
each worker and watcher renews from its loop; a container's healthcheck runs it with --local."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from faces import logs
from faces import settings as defaults
from faces.ops import exits
from faces.ops.cli.application import app, fail, usage
from faces.ops.cli.options import with_settings
from faces.ops.settings import AppSettings
from faces.producer.watch import WATCH_STAGE
from faces.streams import names

KNOWN_STAGES = (*names.STAGE_ORDER, WATCH_STAGE)


@app.command()
@with_settings(output=False)
def health(
    stage: Annotated[str | None, typer.Option("--stage", help=f"Only this stage ({', '.join(KNOWN_STAGES)}).")] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Only workers on this host (a container's healthcheck).")
    ] = False,
    max_age_s: Annotated[
        float, typer.Option("--max-age-s", min=1, help="A heartbeat older than this counts as not consuming.")
    ] = defaults.HEARTBEAT_STALE_S,
    *,
    settings: AppSettings,
) -> None:
    """Exit 0 when workers are consuming: with --local, a worker (or watcher) on this host;
    with --stage, one of that stage; with neither, one per analysis stage. Exit 1 naming what
    is missing otherwise. Needs a running pipeline."""
    from faces.ops.jobs.target import attached
    from faces.streams.heartbeat import workers

    if stage is not None and stage not in KNOWN_STAGES:
        usage(f"unknown stage {stage!r}; expected one of {', '.join(KNOWN_STAGES)}")
    logs.configure(level="WARNING")
    host = socket.gethostname()
    with attached(settings) as (_url, client):
        found = [
            w for w in workers(client) if (stage is None or w["stage"] == stage) and (not local or w["host"] == host)
        ]
    wanted = [stage] if stage else ([] if local else list(names.STAGE_ORDER))
    where = f" on host {host}" if local else ""
    if local and not stage and not any(w["age_s"] < max_age_s for w in found):
        fail(_missing(where, "any stage", found, max_age_s))
    for name in wanted:
        mine = [w for w in found if w["stage"] == name]
        if not any(w["age_s"] < max_age_s for w in mine):
            fail(_missing(where, name, mine, max_age_s))
    for worker in found:
        state = "consuming" if worker["age_s"] < max_age_s else "stale"
        typer.echo(
            f"{worker['stage']}\t{worker['consumer']}\t{state}\t"
            f"heartbeat {worker['age_s']:.1f} s ago\tprocessed {worker['processed']}"
        )
    raise typer.Exit(exits.OK)


def _missing(where: str, stage: str, seen: list[dict], max_age_s: float) -> str:
    if not seen:
        return (
            f"no worker of {stage}{where} has a heartbeat: start one ({_starting(stage)}), "
            "or look at its log for why it stopped"
        )
    youngest = min(w["age_s"] for w in seen)
    return (
        f"no worker of {stage}{where} is consuming: the last heartbeat is {youngest:.0f} s old "
        f"(over {max_age_s:.0f} s): it is stuck or gone; look at its log, then restart it"
    )


def _starting(stage: str) -> str:
    """The commands that start a worker of `stage`: a watcher is no `faces worker`."""
    if stage == WATCH_STAGE:
        return "`faces watch DIR`, or `faces up --watch DIR`"
    if stage in names.STAGE_ORDER:
        return f"`faces worker {stage}`, or `faces up`"
    return "`faces worker STAGE`, or `faces up`"
