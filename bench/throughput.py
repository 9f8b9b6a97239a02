"""The throughput part (issue 16): near the machine's limit, and how cost grows with the work.

Runs, in this order, each in its own module:

1. the CPU floor, each step's CPU seconds per image, per setup              (bench/floor.py)
2. the best plain program, the library in one process per core, no Redis      (bench/plain.py)
3. the pipeline's steady state on many distinct photos, per setup             (bench/steady.py)
4. scale-out: fewer or more detect workers on this machine (bundled backend) (bench/steady.py)
5. growth: 100, 1,000, 10,000 small images queued, then consumed              (bench/growth.py)

A setup is an age/gender backend with recognition off (issue 27's comparison: `dlib`,
`deepface`) or on (issue 24's: `dlib+recognition`, the bundled backend with the embed stage,
and the plain program computing each face's descriptor too). Every stack is told which, by
option, whatever FACES_RECOGNITION says; scale-out and growth run with recognition off.

``python -m bench FOLDER --synthetic-weights --only throughput`` runs just this part
(`make bench-throughput`); `make bench` runs it after the comparison with DeepFace.
bench/report.py judges the targets and lays out the tables.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import floor as bench_floor
from bench import growth as bench_growth
from bench import plain as bench_plain
from bench import steady as bench_steady
from bench import workload
from bench.machine import cpu_kind, usable_cores
from bench.pipeline import WORKER_BATCH
from faces.ops.supervise.counts import auto_counts
from faces.streams.names import STAGE_ORDER

BUNDLED, DEEPFACE = "dlib", "deepface"  # the age/gender backends, as --agegender names them
EXTRA_PHOTOS = Path("data")  # the repository's own photos join the bench folder's
SMALL_SOURCE = EXTRA_PHOTOS / "astronaut.jpg"


@dataclass(frozen=True)
class ThroughputOptions:
    """Sizes of the throughput part; the defaults are issue 16's."""

    steady_images: int = 1000  # images fed to the running stack (bundled backend)
    deepface_images: int = 200  # the same with DeepFace's networks (0: skip)
    recognition_images: int = 400  # the same with recognition on (bundled backend; 0: skip)
    plain_images: int = 60  # images the plain program analyses after its warm-up
    growth: tuple[int, ...] = (100, 1000, 10000)  # (): no growth runs
    growth_window: int = bench_growth.WINDOW  # results per measured window, the queue kept full
    growth_windows: int = bench_growth.WINDOWS  # windows per size (their median is its rate)
    scale: tuple[int, ...] = (1, 2, 4)  # detect workers; (): no scale-out runs
    scale_images: int = 300  # images per scale-out run (the steady run's detect count: that run)
    repeat: int = 1  # floor timings: median of this many


def run_throughput(
    folder: Path, deepface_home: Path | None, options: ThroughputOptions, say: Callable[[str], None] = lambda line: None
) -> dict:
    """Every figure of the throughput part (see the module docstring) as one dict.
    ``deepface_home``: DEEPFACE_HOME holding the weights DeepFace runs with (None: bundled only)."""
    from faces.models.agegender_backends import load_backend
    from faces.producer.files import scan

    photos = scan([folder]).images
    if EXTRA_PHOTOS.is_dir() and EXTRA_PHOTOS.resolve() != folder.resolve():
        photos += scan([EXTRA_PHOTOS]).images
    cores = usable_cores()
    weights = deepface_home / ".deepface" / "weights" if deepface_home else None
    envs = {BUNDLED: {"FACES_AGEGENDER": BUNDLED}}
    if deepface_home:
        envs[DEEPFACE] = {"FACES_AGEGENDER": DEEPFACE, "DEEPFACE_HOME": str(deepface_home)}
    figures: dict = {
        "photos": [p.name for p in photos],
        "cores": cores,
        "cpu_kind": cpu_kind(),
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.__dict__.items()},
        "plain": {},
        "steady": {},
        "scale": {},
    }
    setups = _setups(envs, options)
    workdir = Path(tempfile.mkdtemp(prefix="faces-bench-throughput-"))
    try:
        say("throughput: CPU floor of each step")
        backends = {BUNDLED: load_backend(BUNDLED)}
        if weights:
            backends[DEEPFACE] = load_backend(DEEPFACE, weights)
        recognising = [s.backend for s in setups.values() if s.recognition]
        figures["floor"] = bench_floor.cpu_floor(photos, backends, cores, WORKER_BATCH, options.repeat, recognising)
        del backends
        for name, setup in setups.items():
            if setup.plain_images:
                say(f"throughput: best plain program ({name}, {cores} processes, {setup.plain_images} images)")
                paths = workload.distinct_copies(photos, setup.plain_images, workdir / f"plain-{name}")
                figures["plain"][name] = bench_plain.best_plain(
                    paths, setup.backend, weights, cores, recognition=setup.recognition
                )
        for name, setup in setups.items():
            say(f"throughput: pipeline steady state ({name}, {setup.steady_images} images)")
            paths = workload.distinct_copies(photos, setup.steady_images, workdir / f"steady-{name}")
            # The workers `faces up` starts by default on these cores (--workers auto).
            figures["steady"][name] = bench_steady.steady_state(
                paths,
                photos[:2],
                workdir / f"stack-{name}",
                envs[setup.backend],
                counts=auto_counts(cores, setup.recognition),
                recognition=setup.recognition,
            )
        figures["scale"] = _scale_out(photos, options, envs[BUNDLED], figures["steady"].get(BUNDLED), workdir, say)
        if options.growth:
            say(f"throughput: growth, {', '.join(map(str, options.growth))} small images queued then consumed")
            small = workload.small_face(SMALL_SOURCE if SMALL_SOURCE.is_file() else photos[0])
            figures["growth"] = bench_growth.grow(
                small, options.growth, workdir, envs[BUNDLED], options.growth_window, options.growth_windows
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


@dataclass(frozen=True)
class Setup:
    """What one column of the throughput tables runs: a backend, recognition on or off, and
    how many images its plain program and its steady state get."""

    backend: str
    recognition: bool
    plain_images: int
    steady_images: int


def _setups(envs: dict, options: ThroughputOptions) -> dict[str, Setup]:
    """The setups to run, by name (bench/floor.py names the one with recognition on), in the
    order of the tables; a setup fed no images is left out (with DeepFace, its plain program too)."""
    setups = {
        BUNDLED: Setup(BUNDLED, False, options.plain_images, options.steady_images),
        DEEPFACE: Setup(DEEPFACE, False, options.plain_images, options.deepface_images),
        bench_floor.recognition_setup(BUNDLED): Setup(BUNDLED, True, options.plain_images, options.recognition_images),
    }
    return {name: s for name, s in setups.items() if s.backend in envs and s.steady_images}


def _scale_out(
    photos: Sequence[Path],
    options: ThroughputOptions,
    env: dict,
    steady: dict | None,
    workdir: Path,
    say: Callable[[str], None],
) -> dict:
    """Images/s with 1, 2, 4 ... detect workers (one of each other stage). The steady run is
    that row itself when it had exactly those workers (--workers auto on 2 cores does)."""
    out = {}
    for count in options.scale:
        if steady is not None and steady["counts"] == {**{s: 1 for s in STAGE_ORDER}, "detect": count}:
            out[str(count)] = {**steady, "from_steady_run": True}
            continue
        say(f"throughput: scale-out, {count} detect workers, {options.scale_images} images")
        paths = workload.distinct_copies(photos, options.scale_images, workdir / f"scale-{count}")
        out[str(count)] = bench_steady.steady_state(
            paths, photos[:2], workdir / f"stack-scale-{count}", env, counts={"detect": count}, recognition=False
        )
    return out
