"""How the commands word what they print: counted nouns ("1 image", "3 images"), times."""

from __future__ import annotations

from datetime import datetime, timezone


def count(number: int, noun: str, plural: str | None = None) -> str:
    """`number` and `noun`, the noun in the plural (`plural`, else noun + "s") unless it is 1."""
    return f"{number} {noun if number == 1 else (plural or noun + 's')}"


def iso_time(epoch_s: float) -> str:
    """Epoch seconds as the results write times: ISO 8601 in UTC, to the millisecond
    (2026-11-27T21:30:00.123Z)."""
    moment = datetime.fromtimestamp(epoch_s, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
