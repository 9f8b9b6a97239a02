"""Counted nouns in what the commands print: "1 image", "3 images", "0 images"."""

from __future__ import annotations


def count(number: int, noun: str, plural: str | None = None) -> str:
    """`number` and `noun`, the noun in the plural (`plural`, else noun + "s") unless it is 1."""
    return f"{number} {noun if number == 1 else (plural or noun + 's')}"
