"""Draw a result (boxes, 68 points, age, gender, yaw) onto a copy of its photo."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

_BOX = (60, 200, 60)  # BGR green
_POINT = (40, 40, 230)  # BGR red
_TEXT = (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_PAD = 3  # label box pixels beyond the text's size: 1 on the left, 2 on the right and below


def draw_result(pixels: np.ndarray, result: dict[str, Any]) -> np.ndarray:
    """BGR uint8 photo + a faces.result/1 document -> a new annotated BGR uint8 image.

    Each face gets its box, its landmarks and a label such as "34y Woman 92% yaw+12";
    fields that are null (e.g. age without weights) are left out. ``pixels`` is not changed.
    """
    canvas = pixels.copy()
    # Line widths and text grow with the photo so a 12 MP picture stays readable.
    scale = max(1.0, max(canvas.shape[:2]) / 800)
    thickness = max(1, round(scale))
    for face in result.get("faces", []):
        box = face["box"]
        top_left = (int(box["x"]), int(box["y"]))
        bottom_right = (int(box["x"] + box["w"]), int(box["y"] + box["h"]))
        cv2.rectangle(canvas, top_left, bottom_right, _BOX, thickness)
        for x, y in face.get("landmarks") or []:
            cv2.circle(canvas, (round(x), round(y)), thickness, _POINT, -1)
        label = _label(face)
        if label:
            _put_label(canvas, label, top_left, 0.45 * scale, thickness)
    return canvas


def _label(face: dict[str, Any]) -> str:
    parts = []
    if face.get("age") is not None:
        parts.append(f"{face['age']:.0f}y")
    gender = face.get("gender")
    if gender:
        parts.append(f"{gender['label']} {gender['confidence']:.0%}")
    pose = face.get("pose")
    if pose:
        parts.append(f"yaw{pose['yaw']:+.0f}")
    return " ".join(parts)


def _put_label(canvas: np.ndarray, text: str, corner: tuple[int, int], font_scale: float, thickness: int) -> None:
    """Text on a filled box above ``corner``, kept inside the picture (see ``label_rect``)."""
    (width, height), baseline = cv2.getTextSize(text, _FONT, font_scale, thickness)
    left, top, right, bottom = label_rect(canvas.shape, (width, height + baseline), corner)
    cv2.rectangle(canvas, (left, top), (right, bottom), _BOX, -1)
    cv2.putText(canvas, text, (left + 1, top + height + 1), _FONT, font_scale, _TEXT, thickness, cv2.LINE_AA)


def label_rect(
    shape: tuple[int, ...], text_size: tuple[int, int], corner: tuple[int, int]
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), inclusive, of the label box for text of ``text_size`` (width,
    height with the baseline) at a face's top-left ``corner``, in a picture of ``shape``.

    The box sits above the face, or below its top edge when the face touches the top of the
    picture; it is then moved left and up as far as needed to stay inside the picture (faces at
    the right or bottom edge). A label wider than the picture starts at x=0 and is cut at the
    right edge, so that its beginning (the age) stays readable.
    """
    picture_h, picture_w = shape[:2]
    box_w, box_h = text_size[0] + _PAD, text_size[1] + _PAD
    x, y = corner
    top = y - box_h if y - box_h >= 0 else y
    top = max(0, min(top, picture_h - box_h))
    left = max(0, min(x, picture_w - box_w))
    return left, top, min(left + box_w, picture_w) - 1, min(top + box_h, picture_h) - 1
