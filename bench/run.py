"""One benchmark run: this pipeline against DeepFace's own loop, side by side, on the same photos.

One run measures, in this order (the cold runs first, while nothing of ours is loaded here):

1. the peer, DeepFace.analyze in a fresh process, cold and warm   (bench/peer.py)
2. this pipeline cold, a whole `faces run`, per weight set         (bench/pipeline.py)
   (and in float32 too when the default precision is bfloat16), with the bundled age/gender
   networks (recognition off, then on as users run it), and the peer and `faces run` again as
   on an AVX2-only CPU when this one is newer
   and warm, a running stack fed the batch                          (bench/pipeline.py)
   Recognition is off in every run but the one named on: DeepFace's loop recognises nobody.
3. each stage alone on the decoded photos, and the backbone overhead (bench/stages.py)
4. age/gender batched vs one face at a time, shared trunk vs two full models, per precision,
   and how far bfloat16's outputs are from float32's
5. the transport alone, one hop of a real event                     (bench/transport.py)
6. throughput near the machine's limit and growth with the work    (bench/throughput.py)
   (alone: ``run_throughput_only``, `python -m bench FOLDER --only throughput`)

Every figure goes into one dict (``python -m bench --json`` writes it); bench/report.py turns
it into tables and checks the targets.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import peer as bench_peer
from bench import pipeline as bench_pipeline
from bench import stages as bench_stages
from bench import transport as bench_transport
from bench.machine import AVX2_EMULATION, AVX2_ONLY, CpuWatch, cpu_kind, machine_facts
from bench.report import derive, derive_throughput
from bench.throughput import BUNDLED, ThroughputOptions, run_throughput
from faces.models.precision import FLOAT32, PRECISION_ENV, choose_precision
from faces.models.weights import AGE_FILE, GENDER_FILE, deepface_weights_dir
from faces.producer.files import scan

SYNTHETIC_SEED = 0
HOPS = 2000  # per hop figure: enough for a stable p99 in about a second
FACES_PER_CALL = 16


class BenchInputError(ValueError):
    """The bench cannot start with what it was given.

    Cause: a folder with no images, or no DeepFace weights without --synthetic-weights.
    Remedy: point it at a folder of photos; pass --synthetic-weights (or `faces models fetch`).
    """


def run_bench(
    folder: Path,
    synthetic_weights: bool,
    repeat: int = 1,
    say: Callable[[str], None] = lambda line: None,
    throughput: ThroughputOptions | None = ThroughputOptions(),
) -> dict:
    """Measure everything listed in the module docstring; returns every figure as a dict.
    ``throughput``: the sizes of part 6 (None: skip it)."""
    photos = scan([folder]).images
    if not photos:
        raise BenchInputError(f"no images under {folder}")
    watch = CpuWatch()
    workdir = Path(tempfile.mkdtemp(prefix="faces-bench-"))
    try:
        homes = _weight_sets(workdir, synthetic_weights, say)
        precision = choose_precision()
        figures: dict = {
            "folder": str(folder),
            "images": len(photos),
            "repeat": repeat,
            "weights": "synthetic" if synthetic_weights else "deepface",
            "precision": precision,
            "peer": {},
            "cold": {},
            "cold_float32": {},
        }
        for name, home in homes.items():
            say(f"DeepFace loop, cold and warm ({name} weights)")
            figures["peer"][name] = bench_peer.run_peer(photos, home, workdir / f"peer-{name}")
            say(f"faces run, cold ({name} weights, {precision})")
            figures["cold"][name] = bench_pipeline.cold_run(folder, home, workdir / f"cold-{name}", recognition=False)
        main_name, main_home = next(iter(homes.items()))
        if precision != FLOAT32:
            # What DeepFace's exact arithmetic costs here, for the same comparison.
            say(f"faces run, cold ({main_name} weights, float32)")
            figures["cold_float32"][main_name] = bench_pipeline.cold_run(
                folder, main_home, workdir / "cold-float32", env={PRECISION_ENV: FLOAT32}, recognition=False
            )
        for key, recognition in (("cold_bundled", False), ("cold_bundled_recognition", True)):
            say(f"faces run, cold (the bundled age/gender networks, recognition {'on' if recognition else 'off'})")
            figures[key] = bench_pipeline.cold_run(
                folder, main_home, workdir / key, env={"FACES_AGEGENDER": BUNDLED}, recognition=recognition
            )
        if cpu_kind() != AVX2_ONLY:
            # The cold target holds on AVX2-only CPUs too: run the pair again as on one.
            avx2_precision = AVX2_EMULATION[PRECISION_ENV]
            say(f"DeepFace loop and faces run, cold, as on an AVX2-only CPU (capped at AVX2, {avx2_precision})")
            figures["avx2"] = {
                "peer": bench_peer.run_peer(photos, main_home, workdir / "peer-avx2", AVX2_EMULATION),
                "cold": bench_pipeline.cold_run(
                    folder, main_home, workdir / "cold-avx2", env=AVX2_EMULATION, recognition=False
                ),
                "precision": avx2_precision,
            }
        say("running stack, warm")
        figures["warm"] = bench_pipeline.warm_run(photos, photos[0], main_home, workdir / "warm", repeat)
        say("stages alone; age/gender batching and trunk sharing")
        figures.update(_stages_alone(photos, main_home, homes.get("separate"), precision, repeat, workdir, say))
        if throughput is not None:
            figures["throughput"] = run_throughput(folder, main_home, throughput, say)
        figures["machine"] = machine_facts(figures["warm"]["redis_version"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures["machine"]["load"] = watch.report()
    figures["derived"] = derive(figures)
    if "throughput" in figures:
        figures["derived"]["throughput"] = derive_throughput(figures["throughput"])
        figures["derived"]["targets"] += figures["derived"]["throughput"]["targets"]
    return figures


def run_throughput_only(
    folder: Path, synthetic_weights: bool, options: ThroughputOptions, say: Callable[[str], None] = lambda line: None
) -> dict:
    """Part 6 alone (`--only throughput`): the same figures as in a whole run, under
    ``figures["throughput"]``, with the machine's facts and its load meanwhile."""
    if not scan([folder]).images:
        raise BenchInputError(f"no images under {folder}")
    watch = CpuWatch()
    workdir = Path(tempfile.mkdtemp(prefix="faces-bench-"))
    try:
        if synthetic_weights:
            from bench.synthetic import write_synthetic_weights

            say("writing synthetic weights (shared trunk)")
            home = workdir / "home-shared"
            write_synthetic_weights(home / ".deepface" / "weights", shared_trunk=True, seed=SYNTHETIC_SEED)
        else:
            home = next(iter(_weight_sets(workdir, False, say).values()))
        figures: dict[str, Any] = {
            "only": "throughput",
            "folder": str(folder),
            "repeat": options.repeat,
            "weights": "synthetic" if synthetic_weights else "deepface",
            "precision": choose_precision(),
            "throughput": run_throughput(folder, home, options, say),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures["machine"] = machine_facts()
    figures["machine"]["load"] = watch.report()
    figures["derived"] = {"throughput": derive_throughput(figures["throughput"])}
    figures["derived"]["targets"] = figures["derived"]["throughput"]["targets"]
    return figures


def _weight_sets(workdir: Path, synthetic: bool, say: Callable[[str], None]) -> dict[str, Path]:
    """DEEPFACE_HOME folders to run with: synthetic shared and separate trunks, or the real one."""
    if not synthetic:
        weights = deepface_weights_dir()
        if not (weights / AGE_FILE).is_file() or not (weights / GENDER_FILE).is_file():
            raise BenchInputError(
                f"no DeepFace weights in {weights}: pass --synthetic-weights or run `faces models fetch`"
            )
        return {"deepface": weights.parents[1]}
    from bench.synthetic import write_synthetic_weights

    homes = {}
    for name, shared in (("shared", True), ("separate", False)):
        say(f"writing synthetic weights ({name} trunk)")
        homes[name] = workdir / f"home-{name}"
        write_synthetic_weights(homes[name] / ".deepface" / "weights", shared_trunk=shared, seed=SYNTHETIC_SEED)
    return homes


def _stages_alone(
    photos: list[Path],
    home: Path,
    separate_home: Path | None,
    precision: str,
    repeat: int,
    workdir: Path,
    say: Callable[[str], None],
) -> dict:
    """Sections 3, 4 and 5: everything measured in this process on decoded photos."""
    from faces.models.agegender import load_agegender, load_full_models
    from faces.models.detect import load_detector
    from faces.models.landmarks import load_landmarker

    decoded = bench_stages.load_photos(photos)
    detector, landmarker = load_detector(), load_landmarker()
    detect_s, boxes = bench_stages.time_detect(detector, decoded, repeat)
    landmarks_s, faces = bench_stages.time_landmarks(landmarker, decoded, boxes, repeat)
    weights = home / ".deepface" / "weights"
    model = load_agegender(weights)
    agegender = bench_stages.time_agegender_stage(model, decoded, faces, bench_pipeline.WORKER_BATCH, repeat)
    stages = {
        "images": len(decoded),
        "faces": faces.count,
        "decode_s": bench_stages.time_decode(decoded, repeat),
        "detect_s": detect_s,
        "landmarks_s": landmarks_s,
        "agegender_s": agegender["seconds"],
        "agegender": agegender,
        "shared_trunk": model.shared_trunk,
    }

    crops = bench_stages.crops_of(decoded, faces, range(len(decoded)))
    # All faces in one call, calls of 16 (a moderate batch, as a worker batch of a few photos
    # gives), one face per call (DeepFace's way); for the shared trunk and two full models,
    # in the precision in force and, when that is not float32, in DeepFace's float32 too.
    precisions = [precision] if precision == FLOAT32 else [precision, FLOAT32]
    variants: dict = {"faces": len(crops), "precisions": precisions}
    sizes = {"all": len(crops), "16": FACES_PER_CALL, "one": 1}
    for name in precisions:
        if name != precision:
            exact = load_agegender(weights, precision=name)
            variants["precision_difference"] = bench_stages.output_difference(model, exact, crops)
            del model
            model = exact
        for label, size in sizes.items():
            variants[f"{name}/shared/{label}"] = bench_stages.time_predict_calls(model, crops, size, repeat)
    del model
    for name in precisions:
        two = load_full_models((separate_home or home) / ".deepface" / "weights", name)
        for label, size in sizes.items():
            variants[f"{name}/two/{label}"] = bench_stages.time_predict_calls(two, crops, size, repeat)
        del two

    variants["bundled"] = bench_stages.time_bundled(decoded, faces, repeat)

    say("transport: one hop of a real event")
    events = bench_transport.pick_events(decoded, [len(b) for b in boxes], detector, landmarker)
    transport = bench_transport.measure_transport(events, workdir / "transport", HOPS, repeat)
    return {"stages": stages, "agegender_variants": variants, "transport": transport}
