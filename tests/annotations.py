"""Read dlib's imglab XML annotations and match detections against them.

The dlib-faces test set (../shared/testdata/dlib-faces) lists face boxes as
top/left/width/height, and in the *_with_face_landmarks.xml files also the 68 points that
dlib's predictor gives for each box. Only the photos listed in the XML files are annotated;
the others in the folder may hold faces nobody boxed, so accuracy is measured on the listed
photos only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from faces.models.detect import Box

DETECTION_FILES = ("training.xml", "testing.xml")
LANDMARK_FILES = ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml")


@dataclass(frozen=True)
class AnnotatedFace:
    """One hand-drawn box, with its 68 (x, y) points when the file carries them."""

    box: Box
    points: tuple[tuple[float, float], ...] | None


@dataclass(frozen=True)
class AnnotatedImage:
    path: Path
    faces: tuple[AnnotatedFace, ...]


def read_annotations(folder: Path, files: tuple[str, ...] = DETECTION_FILES) -> list[AnnotatedImage]:
    """Parse imglab XML ``files`` in ``folder`` into one ``AnnotatedImage`` per photo."""
    images = []
    for name in files:
        root = ET.parse(folder / name).getroot()
        for image in root.iter("image"):
            faces = tuple(_face(box) for box in image.iter("box") if box.get("ignore", "0") != "1")
            images.append(AnnotatedImage(path=folder / _attribute(image, "file"), faces=faces))
    return images


def _attribute(element: ET.Element, name: str) -> str:
    value = element.get(name)
    assert value is not None, f"<{element.tag}> without {name}"
    return value


def _face(element: ET.Element) -> AnnotatedFace:
    box = Box(
        x=int(_attribute(element, "left")),
        y=int(_attribute(element, "top")),
        w=int(_attribute(element, "width")),
        h=int(_attribute(element, "height")),
    )
    parts = sorted(element.iter("part"), key=lambda part: int(_attribute(part, "name")))
    points = tuple((float(_attribute(p, "x")), float(_attribute(p, "y"))) for p in parts) or None
    return AnnotatedFace(box=box, points=points)


def match_boxes(found: list[Box], truth: list[Box], min_iou: float) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, best IoU first; returns (found index, truth index) pairs."""
    candidates = sorted(
        ((found_box.iou(true_box), i, j) for i, found_box in enumerate(found) for j, true_box in enumerate(truth)),
        reverse=True,
    )
    used_found, used_truth, pairs = set(), set(), []
    for iou, i, j in candidates:
        if iou < min_iou:
            break
        if i in used_found or j in used_truth:
            continue
        used_found.add(i)
        used_truth.add(j)
        pairs.append((i, j))
    return pairs
