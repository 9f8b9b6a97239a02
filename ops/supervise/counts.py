"""How many worker processes `faces run` and `faces up` start for each stage (`--workers`).

One process per stage leaves cores idle: detection costs most of an image's CPU and runs in one
thread, so a single detect worker stays at 100 % of one core while the rest of the machine waits
for it (docs/benchmark.md, "Throughput and growth"). `auto` sizes each stage by its measured
share of the CPU (faces/settings.py STAGE_CPU_SHARE) and the cores this process may use."""

from __future__ import annotations

import math
import os

from faces import exits
from faces import settings as defaults
from faces.errors import FacesError
from faces.streams.names import STAGE_ORDER

AUTO = "auto"


class BadWorkerCounts(FacesError, ValueError):
    """--workers could not be read.

    Cause: a stage name that does not exist, or a count that is not a whole number from 1 up.
    Remedy: `auto`, or STAGE=N pairs separated by commas, e.g. `detect=2,agegender=1`.
    """

    exit_code = exits.USAGE


def available_cores() -> int:
    """The cores this process may run on (a container's or taskset's CPU set, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux, or no affinity to read
        return max(1, os.cpu_count() or 1)


def auto_counts(cores: int, recognition: bool = defaults.RECOGNITION) -> dict[str, int]:
    """ceil(cores x the stage's CPU share) workers per stage, at least one; the shares of the
    work with recognition on (the embed stage describing faces) or off (it only passes jobs on)."""
    shares = defaults.STAGE_CPU_SHARE_RECOGNITION if recognition else defaults.STAGE_CPU_SHARE
    return {stage: max(1, math.ceil(cores * shares[stage] - 1e-9)) for stage in STAGE_ORDER}


def parse_counts(text: str, cores: int | None = None, recognition: bool = defaults.RECOGNITION) -> dict[str, int]:
    """`auto` or `detect=2,agegender=1` -> a count for every stage (stages not named: auto)."""
    counts = auto_counts(available_cores() if cores is None else cores, recognition)
    text = text.strip()
    if text.lower() == AUTO:
        return counts
    for pair in text.split(","):
        stage, equals, number = (part.strip() for part in pair.partition("="))
        if stage not in counts:
            raise BadWorkerCounts(
                f"--workers {text!r}: unknown stage {stage!r}; the stages are "
                f"{', '.join(STAGE_ORDER)} (e.g. detect=2,agegender=1, or auto)"
            )
        if not equals or not number.isdigit() or int(number) < 1:
            raise BadWorkerCounts(
                f"--workers {text!r}: {stage} needs a whole number of workers from 1 up, e.g. {stage}=2"
            )
        counts[stage] = int(number)
    return counts


def describe(counts: dict[str, int]) -> str:
    """'detect=2,landmarks=1,...': the form --workers takes, in stage order."""
    return ",".join(f"{stage}={counts[stage]}" for stage in STAGE_ORDER)
