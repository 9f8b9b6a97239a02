"""Annotated pictures: boxes, points and labels land where the result says, on a copy."""

from __future__ import annotations

import numpy as np

from faces.models.annotate import draw_result
from faces.schemas.result import _FACE_DEFAULTS


def _face(**fields):
    """A face as a result holds it: the schema's defaults (nulls) under a box and score of our own."""
    return {**_FACE_DEFAULTS, "box": {"x": 20, "y": 40, "w": 50, "h": 60}, "score": 1.2, **fields}


def test_drawing_marks_the_box_and_points_on_a_copy():
    photo = np.zeros((200, 300, 3), np.uint8)
    points = [[30.0 + i % 10 * 3, 60.0 + i // 10 * 5] for i in range(68)]
    result = {"faces": [_face(landmarks=points)]}
    drawn = draw_result(photo, result)
    assert photo.max() == 0, "the input photo must not change"
    assert drawn.shape == photo.shape and drawn.dtype == np.uint8
    assert drawn[40, 45].any() and drawn[70, 20].any()  # top and left edges of the box
    assert drawn[60, 30].any()  # first landmark
    assert not drawn[150, 250].any()  # far from the face


def test_labels_show_age_gender_and_yaw_only_when_known():
    photo = np.zeros((200, 300, 3), np.uint8)
    bare = draw_result(photo, {"faces": [_face()]})
    labelled = draw_result(
        photo,
        {
            "faces": [
                _face(
                    age=33.6,
                    gender={"label": "Woman", "confidence": 0.91, "scores": {}},
                    pose={"yaw": 12.0, "pitch": 0.0, "roll": 0.0},
                )
            ]
        },
    )
    above_box = (slice(20, 40), slice(20, 200))
    assert not bare[above_box].any()
    assert labelled[above_box].any()
    assert draw_result(photo, {"faces": []}).max() == 0
