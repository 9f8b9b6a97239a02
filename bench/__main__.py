"""`python -m bench FOLDER`: run the benchmark and print its tables (`make bench`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from bench.report import render_rich
from bench.run import BenchInputError, run_bench, run_throughput_only
from bench.throughput import ThroughputOptions
from faces import logs
from faces.ops import exits

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _fail(message: str) -> NoReturn:
    """One `error: ...` line on stderr and exit 1, as `faces` commands do."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(exits.FAILED)


@app.command()
def bench(
    folder: Annotated[Path, typer.Argument(help="Folder of photos to analyse on both sides.")],
    synthetic_weights: Annotated[
        bool,
        typer.Option(
            "--synthetic-weights",
            help="Use random weight files with DeepFace's layout (shared and separate trunks) instead of the real ones: timing does not depend on the values.",
        ),
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write every figure, with machine facts, to this JSON file.")
    ] = None,
    repeat: Annotated[
        int,
        typer.Option(
            min=1, help="Repeat each warm measurement this many times and keep the median (cold runs happen once)."
        ),
    ] = 1,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Run one part alone: `throughput` (CPU floor, plain program, steady state, scale-out, growth).",
        ),
    ] = None,
    steady_images: Annotated[
        int, typer.Option(min=10, help="Throughput: images fed to the running stack (bundled age/gender).")
    ] = ThroughputOptions.steady_images,
    deepface_images: Annotated[
        int,
        typer.Option(
            min=0,
            help="Throughput: images fed with DeepFace's age/gender networks (0: skip DeepFace in the plain program and steady state).",
        ),
    ] = ThroughputOptions.deepface_images,
    recognition_images: Annotated[
        int,
        typer.Option(
            min=0,
            help="Throughput: images fed with recognition on (bundled age/gender; its plain program computes each face's descriptor too; 0: skip).",
        ),
    ] = ThroughputOptions.recognition_images,
    plain_images: Annotated[
        int,
        typer.Option(min=2, help="Throughput: images the plain multiprocessing program analyses after its warm-up."),
    ] = ThroughputOptions.plain_images,
    growth: Annotated[
        str,
        typer.Option(help="Throughput: queued-image counts for the growth runs, comma-separated (none: skip them)."),
    ] = ",".join(map(str, ThroughputOptions.growth)),
    scale: Annotated[
        str,
        typer.Option(
            help="Throughput: detect worker counts for the scale-out runs, comma-separated (none: skip them)."
        ),
    ] = ",".join(map(str, ThroughputOptions.scale)),
    scale_images: Annotated[
        int, typer.Option(min=10, help="Throughput: images per scale-out run.")
    ] = ThroughputOptions.scale_images,
) -> None:
    """Benchmark this pipeline against DeepFace.analyze's own loop on the same photos: cold and
    warm end to end, each stage alone, backbone overhead, batching, and one transport hop; then
    throughput near the machine's limit and how cost grows with the work."""
    logs.configure(level="WARNING")
    if not folder.is_dir():
        _fail(f"{folder} is not a folder")
    if only not in (None, "throughput"):
        _fail(f"--only {only}: the only part that runs alone is `throughput`")
    try:
        options = ThroughputOptions(
            steady_images=steady_images,
            deepface_images=deepface_images,
            recognition_images=recognition_images,
            plain_images=plain_images,
            growth=_counts(growth),
            scale=_counts(scale),
            scale_images=scale_images,
            repeat=repeat,
        )
    except ValueError:
        _fail(
            f"--growth and --scale take positive whole numbers separated by commas, or none; got {growth!r} / {scale!r}"
        )
    say = lambda line: typer.echo(f"bench: {line}", err=True)  # noqa: E731
    try:
        if only == "throughput":
            figures = run_throughput_only(folder, synthetic_weights, options, say=say)
        else:
            figures = run_bench(folder, synthetic_weights, repeat, say=say, throughput=options)
    except BenchInputError as exc:
        _fail(str(exc))
    if json_path is not None:  # written before the tables: a long run's figures are never lost
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(figures, indent=1, default=str))
        typer.echo(f"figures: {json_path}", err=True)
    render_rich(figures)
    missed = [t["name"] for t in figures["derived"]["targets"] if not t["met"]]
    typer.echo(f"targets missed: {'; '.join(missed)}" if missed else "all targets met", err=True)


SKIP = "none"  # --growth / --scale: run no such runs


def _counts(text: str) -> tuple[int, ...]:
    if text.strip().lower() == SKIP:
        return ()
    values = tuple(int(v) for v in text.split(",") if v.strip())
    if not values or min(values) < 1:
        raise ValueError(text)
    return values


if __name__ == "__main__":
    app(prog_name="python -m bench")
