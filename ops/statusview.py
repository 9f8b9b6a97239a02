"""Rendering `faces status` for people (the --json form is the data itself)."""

from __future__ import annotations

from typing import Any


def render_status(data: dict[str, Any]) -> str:
    lines = [f"{'stream':20} {'length':>8}  {'group':10} {'pending':>8} {'lag':>8} {'consumers':>9}"]
    for stream in data["streams"]:
        groups = stream["groups"] or [{"name": "-", "pending": 0, "lag": 0, "consumers": 0}]
        for i, group in enumerate(groups):
            name = stream["name"] if i == 0 else ""
            length = str(stream["length"]) if i == 0 else ""
            lines.append(f"{name:20} {length:>8}  {group['name']:10} {group['pending']:>8} "
                         f"{group['lag']:>8} {group['consumers']:>9}")
            for consumer in group.get("consumer_details", []):
                lines.append(f"{'':42}{consumer['name']}: pending {consumer['pending']}, "
                             f"idle {consumer['idle_ms'] / 1000:.1f} s")
    lines.append(f"in flight: {data.get('inflight', 0)}   dead letters: {data['dead_letters']}")
    return "\n".join(lines)
