"""Do ages hold still? The same faces at four sizes and mirrored, through one age/gender backend.

`python -m bench.ages [--backend dlib] [--save FILE] [--compare FILE]` (issue 29; not part of
make test). Each face is cut out of its photo with a margin of one face width, saved as a JPEG
(quality 90) so that the face is about 60, 110, 190 and 270 px wide, and each of the four files
also mirrored: eight photos of one face. The detector finds the face in each (the box nearest
where it should be; the scaled box when the detector misses it), the backend's `chips` and
`predict` give the ages. Printed per face: the eight ages, their spread (max - min) and whether
the gender held. Then the CPU seconds per face of the age/gender step (chips + predict, every
face of one size in one batch, CPU of all threads of this process), beside that of the step as it
was before issue 29 (dlib's own chips, one per network; `BeforeIssue29`) measured in turns.

The 43 annotated faces of dlib's example photos (../shared/testdata/dlib-faces) are analysed
at their own size on their hand-drawn boxes: `--save` writes their ages and genders, and
`--compare` prints the mean absolute change of age against a saved run and the genders that
flipped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from faces.models.agegender_backends import load_backend
from faces.models.detect import Box, load_detector

ROOT = Path(__file__).resolve().parents[1]
DLIB_FACES = ROOT.parent / "shared" / "testdata" / "dlib-faces"
WIDTHS = (60, 110, 190, 270)
JPEG_QUALITY = 90
# (photo, face box as the detector finds it at the photo's own size): faces of several sizes,
# from photos of several sources; group.jpg holds four copies of one face.
FACES = (
    ("data/astronaut.jpg", Box(175, 76, 91, 91)),
    ("data/group.jpg", Box(242, 284, 187, 186)),
    ("data/group.jpg", Box(752, 167, 155, 156)),
    ("data/group.jpg", Box(987, 522, 109, 108)),
    ("dlib-faces/Tom_Cruise_avp_2014_4.jpg", Box(76, 290, 386, 386)),
    ("dlib-faces/bald_guys.jpg", Box(1418, 99, 322, 322)),
    ("dlib-faces/bald_guys.jpg", Box(390, 811, 224, 224)),
    ("dlib-faces/bald_guys.jpg", Box(1067, 1295, 187, 187)),
    ("dlib-faces/bald_guys.jpg", Box(551, 428, 187, 187)),
    ("dlib-faces/2008_002506.jpg", Box(115, 56, 109, 108)),
)
# More faces, 90-224 px, that no setting was chosen on (issue 29's second round picked its
# settings on FACES, then checked them here): the rest of bald_guys.jpg's faces over 128 px and
# the other large faces of dlib's photos.
HELD_OUT = tuple(
    ("dlib-faces/bald_guys.jpg", Box(*box))
    for box in (
        (1457, 1343, 130, 130),
        (56, 77, 187, 187),
        (1047, 758, 186, 187),
        (35, 1274, 187, 187),
        (778, 820, 187, 187),
        (64, 391, 155, 156),
        (322, 442, 155, 156),
        (64, 700, 155, 156),
        (861, 407, 187, 187),
        (340, 1232, 224, 224),
        (67, 999, 130, 130),
        (786, 1251, 156, 156),
        (1113, 1062, 156, 155),
        (531, 98, 186, 187),
        (1801, 1302, 155, 156),
        (311, 225, 130, 130),
        (872, 116, 156, 155),
    )
) + (
    ("dlib-faces/2008_002506.jpg", Box(330, 80, 109, 108)),
    ("dlib-faces/2008_002506.jpg", Box(225, 96, 91, 91)),
    ("dlib-faces/2008_001009.jpg", Box(126, 206, 90, 90)),
    ("dlib-faces/2008_001322.jpg", Box(344, 156, 91, 90)),
)


def photo_path(name: str) -> Path:
    return DLIB_FACES / name.split("/", 1)[1] if name.startswith("dlib-faces/") else ROOT / name


def versions(pixels: np.ndarray, box: Box) -> list[tuple[str, np.ndarray, Box]]:
    """The face with a margin of one face width, re-saved at each width in WIDTHS, and mirrored."""
    height, width = pixels.shape[:2]
    left, top = max(0, box.x - box.w), max(0, box.y - box.h)
    right, bottom = min(width, box.x + 2 * box.w), min(height, box.y + 2 * box.h)
    region = pixels[top:bottom, left:right]
    out = []
    for target in WIDTHS:
        scale = target / box.w
        size = (round(region.shape[1] * scale), round(region.shape[0] * scale))
        method = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC  # how a photo editor would
        resized = cv2.resize(region, size, interpolation=method)
        ok, data = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        assert ok
        saved = cv2.imdecode(data, cv2.IMREAD_COLOR)
        assert saved is not None
        scaled = Box(
            round((box.x - left) * scale), round((box.y - top) * scale), round(box.w * scale), round(box.h * scale)
        )
        out.append((f"{target}", saved, scaled))
        mirrored = np.ascontiguousarray(saved[:, ::-1])
        out.append((f"{target}m", mirrored, Box(saved.shape[1] - scaled.x - scaled.w, scaled.y, scaled.w, scaled.h)))
    return out


def _read(path: Path) -> np.ndarray:
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise SystemExit(f"cannot read {path}")
    return pixels


def iou(a: Box, b: Box) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    return inter / (a.w * a.h + b.w * b.h - inter)


def detected_box(detector, pixels: np.ndarray, expected: Box) -> tuple[Box, bool]:
    """The detector's box of the face (True), or the scaled box when it finds none there (False)."""
    found = [d.box for d in detector.detect([pixels])[0]]
    best = max(found, key=lambda b: iou(b, expected), default=None)
    if best is not None and iou(best, expected) > 0.3:
        return best, True
    return expected, False


def face_dict(box: Box) -> dict:
    return {"box": {"x": box.x, "y": box.y, "w": box.w, "h": box.h}, "landmarks": None}


def measure_sizes(backend, detector, faces_set=FACES) -> tuple[list[dict], float]:
    """Per face: label, the eight ages and genders. And the CPU seconds per face of the step."""
    rows, cpu, faces = [], 0.0, 0
    for name, box in faces_set:
        pixels = _read(photo_path(name))
        ages, genders, misses = {}, set(), []
        for label, image, expected in versions(pixels, box):
            found, ok = detected_box(detector, image, expected)
            if not ok:
                misses.append(label)
            started = time.process_time()
            [prediction] = backend.predict(backend.chips(image, [face_dict(found)]))
            cpu += time.process_time() - started
            faces += 1
            ages[label] = prediction.age
            genders.add(prediction.gender_label)
        rows.append({"face": f"{name} {box.w}px", "ages": ages, "genders": sorted(genders), "misses": misses})
    return rows, cpu / faces


def batch_cpu_per_face(backends, repeat: int = 9) -> list[list[float]]:
    """CPU seconds per face of each backend, one figure per round, with every face of the set at
    one size in one batch (as a stage runs); the backends take turns in each round, so a machine
    busy with other work slows both alike and the ratio of a round holds."""
    photos: list[tuple[np.ndarray, dict]] = []
    for name, box in FACES:
        pixels = _read(photo_path(name))
        photos.extend((image, face_dict(expected)) for _, image, expected in versions(pixels, box))
    for backend in backends:  # warm up
        backend.predict([c for image, face in photos[:2] for c in backend.chips(image, [face])])
    runs: list[list[float]] = [[] for _ in backends]
    for _ in range(repeat):
        for backend, times in zip(backends, runs):
            started = time.process_time()
            chips = [c for image, face in photos for c in backend.chips(image, [face])]
            backend.predict(chips)
            times.append((time.process_time() - started) / len(photos))
    return runs


class BeforeIssue29:
    """The bundled step as it was before issue 29 (commit efa3e9e), for the CPU ratio: dlib's
    own chips (extract_image_chip), one per network, and the ONNX graphs run as the package's
    manifest says (optimisations off)."""

    name = "before issue 29"

    def __init__(self) -> None:
        import onnxruntime as ort

        from faces.models.agegender_bundled import BundledAgeGender, bundle_folder

        self.model = BundledAgeGender()
        folder = bundle_folder()
        specs = json.loads((folder / "manifest.json").read_text())["models"]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        for net, spec in ((self.model.age_net, specs["age"]), (self.model.gender_net, specs["gender"])):
            path = str(folder / spec["artifact"]["filename"])
            net.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def chips(self, pixels: np.ndarray, faces: list[dict]) -> list:
        import dlib

        from faces.models.agegender_bundled import CHIP_PADDING, FaceChips, rgb_of

        rgb, out = rgb_of(pixels), []
        for face in faces:
            box = Box(**face["box"])
            shape = self.model.shape_predictor(rgb, dlib.rectangle(box.x, box.y, box.x + box.w - 1, box.y + box.h - 1))
            gender, age = (
                np.asarray(dlib.extract_image_chip(rgb, dlib.get_face_chip_details(shape, size, CHIP_PADDING)))[None]
                for size in (self.model.gender_net.chip_size, self.model.age_net.chip_size)
            )
            out.append(FaceChips(gender=gender, age=age))
        return out

    def predict(self, chips: list) -> list:
        return self.model.predict(chips)


def annotated_ages(backend, mirror: bool = False) -> dict[str, dict]:
    """Age and gender of each of the 43 annotated faces, on its hand-drawn box (``mirror``: the
    photos mirrored, the boxes with them)."""
    from tests.annotations import read_annotations

    out = {}
    for image in read_annotations(DLIB_FACES):
        pixels = _read(image.path)
        boxes = [face.box for face in image.faces]
        if mirror:
            pixels = np.ascontiguousarray(pixels[:, ::-1])
            boxes = [Box(pixels.shape[1] - b.x - b.w, b.y, b.w, b.h) for b in boxes]
        predictions = backend.predict(backend.chips(pixels, [face_dict(box) for box in boxes]))
        for face, prediction in zip(image.faces, predictions):
            key = f"{image.path.name} {face.box.x},{face.box.y},{face.box.w}"
            out[key] = {"age": prediction.age, "gender": prediction.gender_label, "range": prediction.age_range}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="dlib", help="auto, deepface or dlib (default dlib)")
    parser.add_argument("--save", type=Path, help="write the annotated faces' ages here")
    parser.add_argument("--compare", type=Path, help="compare the annotated faces' ages with this saved run")
    args = parser.parse_args()
    loaded = load_backend(args.backend)
    backend, detector = loaded.backend, load_detector()
    if backend is None:
        raise SystemExit(f"the {args.backend} backend cannot run here: {loaded.note}")
    print(f"backend {backend.name}")
    rows, _ = measure_sizes(backend, detector)
    for row in rows:
        ages = " ".join(f"{label}:{age:.1f}" for label, age in row["ages"].items())
        extra = f" (scaled box at {','.join(row['misses'])})" if row["misses"] else ""
        print(f"{row['face']:44s} spread {_spread(row):4.1f}  {'/'.join(row['genders'])}  {ages}{extra}")
    print(_spread_summary(rows, "faces"))
    held_out, _ = measure_sizes(backend, detector, HELD_OUT)
    print(_spread_summary(held_out, "held-out faces") + ": " + " ".join(f"{_spread(r):.1f}" for r in held_out))
    if args.backend == "dlib":
        now, before = batch_cpu_per_face([backend, BeforeIssue29()])
        ratio = statistics.median(n / b for n, b in zip(now, before))
        print(
            f"CPU per face, batched: {min(now):.4f} s; before issue 29, in turns: {min(before):.4f} s "
            f"(fastest rounds); ratio {ratio:.2f}x (median of {len(now)} rounds)"
        )
    else:
        [now] = batch_cpu_per_face([backend])
        print(f"CPU per face, batched: {min(now):.4f} s (fastest round)")
    annotated = annotated_ages(backend)
    ranges = [a["range"][1] - a["range"][0] for a in annotated.values()]
    print(f"annotated faces: {len(annotated)}, median age_range width {statistics.median(ranges):.1f} years")
    if args.save:
        args.save.write_text(json.dumps(annotated, indent=1))
    if args.backend == "dlib":
        old_step = BeforeIssue29()
        old = annotated_ages(old_step)
        print("against before issue 29: " + _changes(annotated, old))
        # What the old step's own noise was: the same faces, the photos mirrored.
        mirrored = annotated_ages(old_step, mirror=True)
        print(
            "before issue 29, the same faces mirrored: mean |age change| "
            f"{statistics.mean(abs(mirrored[k]['age'] - old[k]['age']) for k in old):.2f} years"
        )
    if args.compare:
        print(f"against {args.compare}: " + _changes(annotated, json.loads(args.compare.read_text())))


def _spread(row: dict) -> float:
    return max(row["ages"].values()) - min(row["ages"].values())


def _spread_summary(rows: list[dict], what: str) -> str:
    spreads = [_spread(row) for row in rows]
    within = sum(spread <= 3.0 for spread in spreads)
    changed = sum(len(row["genders"]) > 1 for row in rows)
    return (
        f"spread: max {max(spreads):.1f}, median {statistics.median(spreads):.1f} years over {len(rows)} {what}, "
        f"{within} within 3 years; gender changed on {changed}"
    )


def _changes(annotated: dict, before: dict) -> str:
    """How the annotated faces' ages and genders moved from ``before``."""
    changes = [abs(annotated[k]["age"] - before[k]["age"]) for k in before]
    signed = statistics.mean(annotated[k]["age"] - before[k]["age"] for k in before)
    flips = [k for k in before if annotated[k]["gender"] != before[k]["gender"]]
    widths = [before[k]["range"][1] - before[k]["range"][0] for k in before]
    return (
        f"mean |age change| {statistics.mean(changes):.2f} years (max {max(changes):.1f}, mean signed {signed:+.2f}); "
        f"median age_range width before {statistics.median(widths):.1f}; gender flips: {flips or 'none'}"
    )


if __name__ == "__main__":
    main()
