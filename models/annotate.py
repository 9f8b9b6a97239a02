"""Drawing a result on its photo: each face's box, its 68 points and an age/gender label.

Pure: takes pixels and a result document, returns new pixels; the caller decides where they go.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

BOX_COLOUR = (80, 200, 60)      # BGR
POINT_COLOUR = (40, 220, 255)
TEXT_COLOUR = (255, 255, 255)


def label_for(face: dict[str, Any]) -> str:
    """"Woman, 31" style label; empty when age and gender are unknown."""
    parts = []
    if face.get("gender"):
        parts.append(face["gender"]["label"])
    if face.get("age") is not None:
        parts.append(f"{face['age']:.0f}")
    return ", ".join(parts)


def draw_result(pixels: np.ndarray, result: dict[str, Any]) -> np.ndarray:
    """A copy of `pixels` (BGR) with every face of `result` drawn on it."""
    canvas = pixels.copy()
    # Line widths follow the photo size so that marks stay visible on large photos.
    thickness = max(1, round(max(canvas.shape[:2]) / 500))
    for face in result.get("faces", []):
        box = face["box"]
        top_left = (box["x"], box["y"])
        cv2.rectangle(canvas, top_left, (box["x"] + box["w"], box["y"] + box["h"]),
                      BOX_COLOUR, thickness)
        for x, y in face.get("landmarks") or []:
            cv2.circle(canvas, (int(round(x)), int(round(y))), thickness, POINT_COLOUR, -1)
        _label(canvas, label_for(face), top_left, thickness)
    return canvas


def _label(canvas: np.ndarray, text: str, top_left: tuple[int, int], thickness: int) -> None:
    if not text:
        return
    scale = 0.5 * thickness
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = top_left
    y = max(h + base, y)  # keep the label inside the photo when the box touches the top
    cv2.rectangle(canvas, (x, y - h - base), (x + w, y), BOX_COLOUR, -1)
    cv2.putText(canvas, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOUR,
                thickness, cv2.LINE_AA)
