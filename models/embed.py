"""Face descriptors for recognition: dlib's ResNet face descriptor (128 numbers per face;
`dlib_face_recognition_resnet_model_v1.dat`, shipped in face_recognition_models and released
into the public domain by its author), computed from the 68 points the landmarks step found,
so no second landmark pass.

Two calls, so that the pixels and the network need not be in one place: `chips` cuts each
face's aligned 150x150 chip from the photo (where the pixels are), `describe` runs the network
on any number of chips at once (in batches, wherever the chips are). The distance between two
descriptors is Euclidean; the author's decision threshold is 0.6 (99.38 % on LFW), and the
pipeline's own is chosen in docs/models.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import dlib
import face_recognition_models
import numpy as np

from faces.models.detect import Box

DESCRIPTOR_SIZE = 128
DESCRIPTOR_DTYPE = np.float32  # what dlib computes in; stored and compared in it too
# The chip the network was trained on: dlib's get_face_chip alignment at 150 px, 25 % padding.
CHIP_SIZE = 150
CHIP_PADDING = 0.25
EMBED_MODEL = "dlib-resnet-v1"


class Embedder:
    """dlib's face recognition ResNet, loaded once."""

    name = EMBED_MODEL

    def __init__(self, model_path: str) -> None:
        self._network = dlib.face_recognition_model_v1(model_path)

    def chips(self, image: np.ndarray, faces: Sequence[tuple[Box, Sequence[tuple[float, float]]]]) -> list[np.ndarray]:
        """BGR uint8 (h, w, 3) image + (box, 68 points in the image's pixels) per face -> one
        aligned RGB chip (CHIP_SIZE square, uint8) per face, same order."""
        if not faces:
            return []
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        shapes = dlib.full_object_detections()
        for box, points in faces:
            # dlib rectangles are inclusive of their right and bottom edges.
            rect = dlib.rectangle(box.x, box.y, box.x + box.w - 1, box.y + box.h - 1)
            shapes.append(dlib.full_object_detection(rect, [dlib.point(round(x), round(y)) for x, y in points]))
        return [np.ascontiguousarray(chip) for chip in dlib.get_face_chips(rgb, shapes, CHIP_SIZE, CHIP_PADDING)]

    def describe(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Aligned chips -> (n, DESCRIPTOR_SIZE) descriptors, one network call for them all."""
        if not chips:
            return np.zeros((0, DESCRIPTOR_SIZE), dtype=DESCRIPTOR_DTYPE)
        vectors = self._network.compute_face_descriptor(list(chips))
        return np.asarray([np.asarray(v) for v in vectors], dtype=DESCRIPTOR_DTYPE)


def load_embedder(model_path: str | None = None) -> Embedder:
    """Load the ResNet descriptor (from face_recognition_models unless given)."""
    return Embedder(model_path or face_recognition_models.face_recognition_model_location())


def distances(query: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
    """Euclidean distance from one descriptor to each row of `descriptors`."""
    if len(descriptors) == 0:
        return np.zeros(0, dtype=DESCRIPTOR_DTYPE)
    return np.linalg.norm(descriptors - query[None, :], axis=1)
