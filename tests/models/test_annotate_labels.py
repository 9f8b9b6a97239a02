"""Face labels on annotated pictures stay inside the picture, whole, wherever the face is."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faces.models.annotate import _BOX, draw_result, label_rect

WIDTH, HEIGHT = 300, 200
FONT, FONT_SCALE, THICKNESS = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1  # what draw_result uses up to 800 px
LABELLED = {
    "age": 33.6,
    "gender": {"label": "Woman", "confidence": 0.91, "scores": {}},
    "pose": {"yaw": 12.0, "pitch": 0.0, "roll": 0.0},
}
LABEL = "34y Woman 91% yaw+12"


def face_at(x: int, y: int, w: int = 40, h: int = 50) -> dict:
    return {
        "box": {"x": x, "y": y, "w": w, "h": h},
        "score": 1.0,
        "landmarks": None,
        "quality": None,
        "age_range": None,
        **LABELLED,
    }


def text_size() -> tuple[int, int]:
    (width, height), baseline = cv2.getTextSize(LABEL, FONT, FONT_SCALE, THICKNESS)
    return width, height + baseline


def green(drawn: np.ndarray, y: int, x: int) -> bool:
    return tuple(int(v) for v in drawn[y, x]) == _BOX


@pytest.mark.parametrize(
    "corner",
    [(WIDTH - 40, 60), (WIDTH - 40, HEIGHT - 50), (WIDTH - 40, 0)],
    ids=["right-edge", "bottom-right-corner", "top-right-corner"],
)
def test_label_of_a_face_at_the_edge_is_moved_inside_whole(corner):
    """The old box began at the face's x and ran `text width + 3` pixels right: past the edge
    for a face 40 px from it. Now it is moved left to end at the edge, with its full size."""
    text_w, text_h = text_size()
    x, y = corner
    assert x + text_w + 2 >= WIDTH, "the old label ran past the right edge here"
    left, top, right, bottom = label_rect((HEIGHT, WIDTH, 3), (text_w, text_h), corner)
    assert 0 <= left and right == WIDTH - 1 and 0 <= top and bottom < HEIGHT
    assert (right - left + 1, bottom - top + 1) == (text_w + 3, text_h + 3), "whole, not cut"
    if y > 0:
        assert bottom < y, "above the face"
    drawn = draw_result(np.zeros((HEIGHT, WIDTH, 3), np.uint8), {"faces": [face_at(*corner)]})
    for py, px in ((top, left), (top, right), (bottom, left), (bottom, right)):
        assert green(drawn, py, px), (py, px)  # the filled box, all four corners visible
    assert not green(drawn, top, left - 1), "and it starts where label_rect says"


def test_label_at_the_bottom_of_a_tall_face_touching_the_top_stays_inside():
    """A face filling the picture's height: no room above, so the label goes below the face's
    top edge; it is kept above the picture's bottom."""
    text_w, text_h = text_size()
    left, top, right, bottom = label_rect((text_h + 1, WIDTH, 3), (text_w, text_h), (10, 0))
    assert (left, top) == (10, 0) and bottom == text_h, "cut at the bottom only when it must be"


def test_label_wider_than_the_picture_starts_at_the_left_edge_and_is_cut_at_the_right():
    text_w, text_h = text_size()
    narrow = text_w // 2
    left, top, right, bottom = label_rect((HEIGHT, narrow, 3), (text_w, text_h), (narrow - 20, 80))
    assert (left, right) == (0, narrow - 1)
    drawn = draw_result(np.zeros((HEIGHT, narrow, 3), np.uint8), {"faces": [face_at(narrow - 20, 80, 15, 30)]})
    assert green(drawn, top, 0) and green(drawn, bottom, narrow - 1)


def test_label_away_from_the_edges_sits_just_above_the_face_as_before():
    text_w, text_h = text_size()
    left, top, right, bottom = label_rect((HEIGHT, WIDTH, 3), (text_w, text_h), (20, 100))
    assert (left, right, bottom) == (20, 20 + text_w + 2, 99)
