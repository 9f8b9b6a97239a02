"""A small side-by-side throughput check, for comparing two versions of the code in one session
(issue 27): the plain program and the pipeline's steady state on the same distinct copies,
bundled age/gender. Not part of `make bench`; run it once per source tree, e.g.

    PYTHONPATH=/path/to/other/tree .venv/bin/python -m bench.sidebyside FOLDER --images 200 --json out.json

(PYTHONPATH puts that tree's `faces` before the installed one, for this process and its workers;
run it from that tree's folder, so that its `bench` is the one imported). On a shared machine
the images/s move with the other load: compare the CPU seconds per image of each process.
Recognition is off on both sides unless ``--recognition`` (then the stack runs the embed stage
and the plain program computes each face's descriptor), whatever FACES_RECOGNITION says.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from bench import plain as bench_plain
from bench import steady as bench_steady
from bench import workload
from bench.machine import cpu_kind, usable_cores
from faces.ops.supervise.counts import auto_counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sidebyside")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--plain-images", type=int, default=60)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--recognition", action="store_true", help="recognition on, on both sides")
    options = parser.parse_args()
    import faces
    from faces.producer.files import scan

    photos = scan([options.folder]).images
    cores = usable_cores()
    workdir = Path(tempfile.mkdtemp(prefix="faces-sidebyside-"))
    env = {"FACES_AGEGENDER": "dlib"}
    try:
        plain = bench_plain.best_plain(
            workload.distinct_copies(photos, options.plain_images, workdir / "plain"),
            "dlib",
            None,
            cores,
            recognition=options.recognition,
        )
        steady = bench_steady.steady_state(
            workload.distinct_copies(photos, options.images, workdir / "steady"),
            photos[:2],
            workdir / "stack",
            env,
            counts=auto_counts(cores, options.recognition),
            latencies=True,
            recognition=options.recognition,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures = {
        "code": str(Path(faces.__file__).resolve().parent.parent),
        "cpu_kind": cpu_kind(),
        "cores": cores,
        "recognition": options.recognition,
        "plain_images_per_s": plain["images_per_s"],
        "steady_images_per_s": steady["images_per_s"],
        "ratio": steady["images_per_s"] / plain["images_per_s"],
        "steady_cpu_s_per_image": steady["cpu_s_per_image"],
        "steady_cpu_s_per_image_total": steady["cpu_s_per_image_total"],
        "faces": (plain["faces"], steady.get("faces")),
    }
    print(json.dumps(figures, indent=1))
    if options.json:
        options.json.write_text(json.dumps({"plain": plain, "steady": steady, **figures}, indent=1))


if __name__ == "__main__":
    main()
