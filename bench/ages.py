"""Do ages hold still? The same faces at four sizes and mirrored, through one age/gender backend.

`python -m bench.ages [--backend dlib] [--save FILE] [--compare FILE]` (issue 29; not part of
make test). Each face is cut out of its photo with a margin of one face width, saved as a JPEG
(quality 90) so that the face is about 60, 110, 190 and 270 px wide, and each of the four files
also mirrored: eight photos of one face. The detector finds the face in each (the box nearest
where it should be; the scaled box when the detector misses it), the backend's `chips` and
`predict` give the ages. Printed per face: the eight ages, their spread (max - min) and whether
the gender held. Then the CPU seconds per face of the age/gender step (chips + predict, every
face of one size in one batch, CPU of all threads of this process).

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


def measure_sizes(backend, detector) -> tuple[list[dict], float]:
    """Per face: label, the eight ages and genders. And the CPU seconds per face of the step."""
    rows, cpu, faces = [], 0.0, 0
    for name, box in FACES:
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


def batch_cpu_per_face(backend, detector, repeat: int = 5) -> float:
    """CPU seconds per face with every face of the set at one size in one batch (as a stage runs)."""
    photos: list[tuple[np.ndarray, dict]] = []
    for name, box in FACES:
        pixels = _read(photo_path(name))
        photos.extend((image, face_dict(expected)) for _, image, expected in versions(pixels, box))
    backend.predict([c for image, face in photos[:2] for c in backend.chips(image, [face])])  # warm up
    runs = []
    for _ in range(repeat):
        started = time.process_time()
        chips = [c for image, face in photos for c in backend.chips(image, [face])]
        backend.predict(chips)
        runs.append((time.process_time() - started) / len(photos))
    return statistics.median(runs)


def annotated_ages(backend) -> dict[str, dict]:
    """Age and gender of each of the 43 annotated faces, on its hand-drawn box."""
    from tests.annotations import read_annotations

    out = {}
    for image in read_annotations(DLIB_FACES):
        pixels = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
        faces = [face_dict(face.box) for face in image.faces]
        for face, prediction in zip(image.faces, backend.predict(backend.chips(pixels, faces))):
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
    spreads = []
    for row in rows:
        values = list(row["ages"].values())
        spread = max(values) - min(values)
        spreads.append(spread)
        ages = " ".join(f"{label}:{age:.1f}" for label, age in row["ages"].items())
        extra = f" (scaled box at {','.join(row['misses'])})" if row["misses"] else ""
        print(f"{row['face']:44s} spread {spread:4.1f}  {'/'.join(row['genders'])}  {ages}{extra}")
    print(f"spread: max {max(spreads):.1f}, median {statistics.median(spreads):.1f} years over {len(rows)} faces")
    print(f"CPU per face, batched: {batch_cpu_per_face(backend, detector):.4f} s")
    annotated = annotated_ages(backend)
    ranges = [a["range"][1] - a["range"][0] for a in annotated.values()]
    print(f"annotated faces: {len(annotated)}, median age_range width {statistics.median(ranges):.1f} years")
    if args.save:
        args.save.write_text(json.dumps(annotated, indent=1))
    if args.compare:
        before = json.loads(args.compare.read_text())
        changes = [abs(annotated[k]["age"] - before[k]["age"]) for k in before]
        flips = [k for k in before if annotated[k]["gender"] != before[k]["gender"]]
        widths = [before[k]["range"][1] - before[k]["range"][0] for k in before]
        print(
            f"against {args.compare}: mean |age change| {statistics.mean(changes):.2f} years "
            f"(max {max(changes):.1f}, mean signed "
            f"{statistics.mean(annotated[k]['age'] - before[k]['age'] for k in before):+.2f}); "
            f"median age_range width before {statistics.median(widths):.1f}; gender flips: {flips or 'none'}"
        )


if __name__ == "__main__":
    main()
