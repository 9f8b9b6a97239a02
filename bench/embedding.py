"""Recognition's model work as the benchmark counts it: each face's aligned chip and its 128-d
descriptor (models/embed.py), for the faces the embed stage describes (those with landmarks).

The CPU floor (bench/floor.py) and the plain program (bench/plain.py) both call this, so the
step they add when recognition is on is the same code the embed stage runs. What the stage does
beyond it (judging each face against the people and faces stored before, recording it in Redis)
is the pipeline's cost above the floor, like its transport.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faces.models.analysis import Photo
from faces.models.detect import Box
from faces.models.embed import Embedder


def face_chips(embedder: Embedder, photo: Photo) -> list[np.ndarray]:
    """The aligned chip of each face of ``photo`` that has landmarks, in result order."""
    faces = [face for face in photo.job["faces"] if face.get("landmarks")]
    return embedder.chips(
        photo.pixels, [(Box(**face["box"]), [(x, y) for x, y in face["landmarks"] or []]) for face in faces]
    )


def describe_photos(embedder: Embedder, photos: Sequence[Photo]) -> np.ndarray:
    """One descriptor per described face of ``photos``: chips cut per photo, the network run
    once for them all (as the embed stage does for its batch)."""
    return embedder.describe([chip for photo in photos for chip in face_chips(embedder, photo)])
