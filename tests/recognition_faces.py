"""Real descriptors of labelled faces for recognition's tests: the photos of
bench/identities.json (four actors six times each in bald_guys.jpg, one astronaut, strangers),
run through the real detector, landmarker and descriptor network."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.recognition import label_of
from tests.pipeline import REPO

IDENTITIES = REPO / "bench" / "identities.json"
DATA = REPO / "data"


@dataclass(frozen=True)
class LabelledFace:
    photo: str
    index: int  # in the detector's order, as a result lists it
    person: str | None  # None: someone seen once
    vector: np.ndarray


def labelled_faces(photos: list[str], dlib_faces_dir: Path, detector, landmarker) -> list[LabelledFace]:
    """Every detected face of `photos` with its descriptor and its label (nearest box centre)."""
    from faces.models.decode import decode_image
    from faces.models.embed import load_embedder

    embedder = load_embedder()
    labels = json.loads(IDENTITIES.read_text())["photos"]
    found = []
    for photo in photos:
        path = dlib_faces_dir / photo if (dlib_faces_dir / photo).exists() else DATA / photo
        pixels = decode_image(path.read_bytes()).pixels
        boxes = [d.box for d in detector.detect([pixels])[0]]
        points = [f.points for f in landmarker.locate(pixels, boxes)]
        vectors = embedder.describe(embedder.chips(pixels, list(zip(boxes, points))))
        for index, (box, vector) in enumerate(zip(boxes, vectors)):
            found.append(LabelledFace(photo, index, label_of(labels[photo], box), vector))
    return found
