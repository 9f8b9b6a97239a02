"""Rendering `faces status` for people (the --json form is the data itself)."""

from __future__ import annotations

import textwrap
import time
from typing import Any

from faces.ops import interrupts

# What each word of the table means: printed under it, and the web page's tooltips say the same.
LEGEND = (
    "pending: taken by a worker, not yet done. lag: waiting, not yet taken. workers: alive (a recent "
    "heartbeat). per min: entries handled (results: announced) in the last 60 s. oldest: age of the "
    "oldest pending entry."
)

LEGEND_WIDTH = 92  # the table's width


def render_status(data: dict[str, Any]) -> str:
    """The table: per group its live workers (heartbeats), then each consumer Redis lists; the
    results stream's row counts the results announced; a legend of the words."""
    rates = data.get("throughput_per_min", {})
    lines = [
        f"{'stream':20} {'length':>8}  {'group':10} {'pending':>8} {'lag':>8} {'workers':>9} "
        f"{'per min':>8} {'oldest':>8}"
    ]
    for stream in data["streams"]:
        if not stream["groups"]:  # the results stream: read by clients, not by a group
            lines.append(
                f"{stream['name']:20} {stream['length']:>8}  {'-':10} {'-':>8} {'-':>8} {'-':>9} "
                f"{data.get('results_per_min', 0):>8} {'-':>8}"
            )
        for i, group in enumerate(stream["groups"]):
            name = stream["name"] if i == 0 else ""
            length = str(stream["length"]) if i == 0 else ""
            oldest = group.get("oldest_pending_age_s")
            lines.append(
                f"{name:20} {length:>8}  {group['name']:10} {group['pending']:>8} "
                f"{group['lag']:>8} {group['workers']:>9} {rates.get(group['name'], 0):>8} "
                f"{'-' if oldest is None else f'{oldest:.0f} s':>8}"
            )
            for consumer in group.get("consumer_details", []):
                lines.append(
                    f"{'':42}{consumer['name']}: pending {consumer['pending']}, idle {consumer['idle_ms'] / 1000:.1f} s"
                )
    for worker in data.get("workers", []):
        lines.append(
            f"worker {worker['stage']:10} {worker['consumer']}: processed {worker['processed']}, "
            f"last heartbeat {worker['age_s']:.0f} s ago"
        )
    memory = data.get("redis_memory_bytes") or 0
    lines.append(
        f"in flight: {data.get('inflight', 0)}   dead letters: {data['dead_letters']}   "
        f"redis memory: {memory / 1e6:.1f} MB"
    )
    lines.extend(textwrap.wrap(LEGEND, LEGEND_WIDTH))
    return "\n".join(lines)


def watch_status(fetch, every_s: float) -> None:
    """Redraw the status in place every `every_s` seconds until Ctrl-C."""
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console()
    try:
        with Live(Text(render_status(fetch())), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(every_s)
                data = fetch()  # where a Ctrl-C can land in a Redis connection's destructor
                interrupts.raise_if_requested()  # ... and be swallowed (ops/interrupts.py)
                live.update(Text(render_status(data)), refresh=True)
    except KeyboardInterrupt:
        pass
