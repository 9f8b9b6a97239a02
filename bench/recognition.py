"""Recognition's quality on the labelled faces we have (bench/identities.json): how the
thresholds of models/identify.py were chosen, and what they give.

    python -m bench.recognition [--photos ../shared/testdata/dlib-faces] [--trials 30]

Identification: each actor of bald_guys.jpg (four, six faces each) enrolled from 1, 2 or 3 of his
faces drawn at random; his other faces should be named him; no stranger (the 43 faces of people
seen once) may be named anyone. Clustering: every face fed one by one in random order, each
actor's face as a photo of its own; a cluster holding two people is a merge (the error users
cannot easily undo), more clusters than people is fragmentation (one merge fixes it).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = REPO.parent / "shared" / "testdata" / "dlib-faces"
ACTORS = ("Dwayne Johnson", "Vin Diesel", "Bruce Willis", "Jason Statham")


def labelled(photos_dir: Path) -> list[tuple[str, str | None, np.ndarray]]:
    """(photo, person or None, descriptor) for every face of the labelled photos but group.jpg
    (four copies of one face: not independent views)."""
    from faces.models.decode import decode_image
    from faces.models.detect import load_detector
    from faces.models.embed import load_embedder
    from faces.models.landmarks import load_landmarker

    detector, landmarker, embedder = load_detector(), load_landmarker(), load_embedder()
    labels = json.loads((REPO / "bench" / "identities.json").read_text())["photos"]
    faces = []
    for photo, entries in labels.items():
        if photo == "group.jpg":
            continue
        path = photos_dir / photo if (photos_dir / photo).exists() else REPO / "data" / photo
        pixels = decode_image(path.read_bytes()).pixels
        boxes = [d.box for d in detector.detect([pixels])[0]]
        points = [f.points for f in landmarker.locate(pixels, boxes)]
        vectors = embedder.describe(embedder.chips(pixels, list(zip(boxes, points))))
        for index, (box, vector) in enumerate(zip(boxes, vectors)):
            # each actor's face counts as a photo of its own (bald_guys.jpg is a collage)
            source = f"{photo}#{index}" if photo == "bald_guys.jpg" else photo
            faces.append((source, label_of(entries, box), vector))
    return faces


def label_of(entries: list[dict], box) -> str | None:
    """The person of the identities.json entry whose box centre is nearest `box`'s (a detected
    box is matched to its labelled face; the labels were drawn on the default detector's)."""
    centre = np.array([box.x + box.w / 2, box.y + box.h / 2])
    nearest = min(
        entries,
        key=lambda e: np.linalg.norm(centre - [e["box"]["x"] + e["box"]["w"] / 2, e["box"]["y"] + e["box"]["h"] / 2]),
    )
    return nearest["person"]


def identification(faces, threshold: float, references: int, trials: int, rng) -> tuple[float, int, float]:
    """(share of actors' other faces named right, faces named wrong, strangers named per trial)."""
    right = total = wrong = strangers_named = 0
    strangers = [v for _, person, v in faces if person is None]
    for _ in range(trials):
        refs, probes = {}, []
        for actor in ACTORS:
            own = [v for _, person, v in faces if person == actor]
            order = rng.permutation(len(own))
            refs[actor] = np.stack([own[i] for i in order[:references]])
            probes += [(actor, own[i]) for i in order[references:]]

        def named(vector, refs=refs):
            best = min((float(np.linalg.norm(r - vector, axis=1).min()), a) for a, r in refs.items())
            return best[1] if best[0] < threshold else None

        for actor, vector in probes:
            who = named(vector)
            total += 1
            right += who == actor
            wrong += who is not None and who != actor
        strangers_named += sum(named(v) is not None for v in strangers)
    return right / total, wrong, strangers_named / trials


def clustering(faces, threshold: float, trials: int, rng) -> tuple[float, float]:
    """(clusters holding two people per run, clusters of the four actors per run): each face
    joins the cluster of its nearest earlier face of another photo when nearer than
    `threshold`, as the embed stage does, else starts its own."""
    merges = actor_clusters = 0
    for _ in range(trials):
        cluster_of: dict[int, int] = {}
        for i in rng.permutation(len(faces)):
            photo, _, vector = faces[i]
            near = [
                (float(np.linalg.norm(faces[j][2] - vector)), cluster_of[j]) for j in cluster_of if faces[j][0] != photo
            ]
            near = [n for n in near if n[0] < threshold]
            cluster_of[int(i)] = min(near)[1] if near else int(i)
        people: dict[int, set] = {}
        for i, cluster in cluster_of.items():
            people.setdefault(cluster, set()).add(faces[i][1] or f"stranger {i}")
        merges += sum(len(p) > 1 for p in people.values())
        actor_clusters += sum(1 for p in people.values() if p & set(ACTORS))
    return merges / trials, actor_clusters / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    from faces.models.identify import CLUSTER_THRESHOLD, MATCH_THRESHOLD

    faces = labelled(args.photos)
    actors = sum(1 for _, p, _ in faces if p in ACTORS)
    strangers = sum(1 for _, p, _ in faces if p is None)
    print(
        f"{len(faces)} faces: {actors} of 4 actors, {strangers} strangers; {platform.processor() or platform.machine()}"
    )
    print(f"\nidentification (MATCH_THRESHOLD = {MATCH_THRESHOLD}), {args.trials} random enrolments each:")
    print("| references | threshold | named right | named wrong | strangers named |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for references in (1, 2, 3):
        for threshold in (0.45, 0.5, 0.55, 0.6):
            right, wrong, strangers_named = identification(faces, threshold, references, args.trials, rng)
            print(f"| {references} | {threshold} | {right:.1%} | {wrong} | {strangers_named:.2f} |")
    # Enrolling anyone makes each person nearer than the threshold a false match: the pairs of
    # different people (two strangers, or a stranger and an actor) below each threshold.
    pairs = [
        float(np.linalg.norm(faces[i][2] - faces[j][2]))
        for i in range(len(faces))
        for j in range(i + 1, len(faces))
        if faces[i][1] is None or faces[i][1] != faces[j][1]
    ]
    print(f"\npairs of different people ({len(pairs)}): nearest {min(pairs):.3f}; nearer than")
    print("| 0.45 | 0.5 | 0.55 | 0.6 |")
    print("|---|---|---|---|")
    print("| " + " | ".join(str(sum(d < t for d in pairs)) for t in (0.45, 0.5, 0.55, 0.6)) + " |")
    print(f"\nclustering (CLUSTER_THRESHOLD = {CLUSTER_THRESHOLD}), {args.trials} random orders each:")
    print("| threshold | clusters holding two people | clusters of the 4 actors |")
    print("|---|---|---|")
    for threshold in (0.4, 0.45, 0.5):
        merged, actor_clusters = clustering(faces, threshold, args.trials, rng)
        print(f"| {threshold} | {merged:.2f} | {actor_clusters:.1f} |")


if __name__ == "__main__":
    main()
