"""Draw a result (boxes, 68 points, age, gender, yaw) onto a copy of its photo."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

_BOX = (60, 200, 60)  # BGR green
_POINT = (40, 40, 230)  # BGR red
_TEXT = (255, 255, 255)


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


def _put_label(
    canvas: np.ndarray, text: str, corner: tuple[int, int], font_scale: float, thickness: int
) -> None:
    """Text on a filled box above ``corner`` (below it when the face touches the top)."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (width, height), baseline = cv2.getTextSize(text, font, font_scale, thickness)
    x, y = corner
    top = y - height - baseline - 2 if y - height - baseline - 2 >= 0 else y
    cv2.rectangle(canvas, (x, top), (x + width + 2, top + height + baseline + 2), _BOX, -1)
    cv2.putText(canvas, text, (x + 1, top + height + 1), font, font_scale, _TEXT, thickness, cv2.LINE_AA)
