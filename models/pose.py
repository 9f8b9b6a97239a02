"""Head pose (yaw, pitch, roll in degrees) from the 68 iBUG landmarks.

A generic 3D face (six points that the 68-point scheme marks reliably) is fitted to the
image points with ``cv2.solvePnP`` under a pinhole camera whose focal length is the image
width, the usual guess when the real camera is unknown. Angles are therefore approximate
(a few degrees), but their signs and rough sizes are dependable.

Sign conventions, all as seen in the image by a viewer:
- yaw   > 0: the face turns toward the image's right (the person's own left); nose points right.
- pitch > 0: the face tilts up (nose points up in the image).
- roll  > 0: the head tilts clockwise (the eye on the image's right sits lower).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Pose:
    """Head orientation in degrees; see the module docstring for the sign conventions."""

    yaw: float
    pitch: float
    roll: float


# Generic head in units of 0.2 mm, in camera-aligned axes for a frontal face: x toward the
# image's right, y down, z away from the camera, origin at the nose tip. Rough adult
# proportions (90 mm between the outer eye corners, which sit ~40 mm behind the nose tip);
# only the shape matters, scale and distance come out of solvePnP. A shallower face would
# inflate the yaw of turned heads.
_MODEL_INDEXES = (30, 8, 36, 45, 48, 54)  # nose tip, chin, outer eye corners, mouth corners
_MODEL_POINTS = np.array(
    [
        (0.0, 0.0, 0.0),  # 30 nose tip
        (0.0, 330.0, 85.0),  # 8 chin
        (-225.0, -170.0, 200.0),  # 36 outer corner of the eye on the image's left
        (225.0, -170.0, 200.0),  # 45 outer corner of the eye on the image's right
        (-150.0, 150.0, 140.0),  # 48 mouth corner on the image's left
        (150.0, 150.0, 140.0),  # 54 mouth corner on the image's right
    ],
    dtype=np.float64,
)
_MODEL_EYE_SPAN = 450.0


def estimate_pose(points: Sequence[tuple[float, float]], image_width: int, image_height: int) -> Pose:
    """68 (x, y) iBUG points in image pixels + the image size -> ``Pose`` in degrees."""
    image_points = np.array([points[i] for i in _MODEL_INDEXES], dtype=np.float64)
    focal = float(image_width)
    camera = np.array([[focal, 0.0, image_width / 2.0], [0.0, focal, image_height / 2.0], [0.0, 0.0, 1.0]])
    # Start from a frontal face at the distance its eye span implies: without a guess the
    # iterative solver sometimes lands on the mirror solution behind the camera.
    eye_span_px = max(1.0, float(np.linalg.norm(image_points[3] - image_points[2])))
    distance = focal * _MODEL_EYE_SPAN / eye_span_px
    nose = image_points[0]
    rvec: np.ndarray = np.zeros((3, 1))
    tvec = np.array(
        [
            [(nose[0] - image_width / 2.0) * distance / focal],
            [(nose[1] - image_height / 2.0) * distance / focal],
            [distance],
        ]
    )
    ok, rvec, tvec = cv2.solvePnP(_MODEL_POINTS, image_points, camera, None, rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE)
    if not ok or not np.all(np.isfinite(rvec)):
        # Never seen with real landmarks; zeros keep the result serialisable as JSON.
        return Pose(yaw=0.0, pitch=0.0, roll=0.0)
    rotation, _ = cv2.Rodrigues(rvec)
    return _angles(rotation)


def _angles(rotation: np.ndarray) -> Pose:
    """Decompose R = Rx(a) Ry(b) Rz(c) (camera axes) and apply the module's sign conventions."""
    b = math.asin(max(-1.0, min(1.0, rotation[0, 2])))
    a = math.atan2(-rotation[1, 2], rotation[2, 2])
    c = math.atan2(-rotation[0, 1], rotation[0, 0])
    # A positive turn about the downward y axis swings the nose to the image's left, and a
    # positive turn about the rightward x axis swings it down: both are negated.
    return Pose(yaw=-math.degrees(b), pitch=-math.degrees(a), roll=math.degrees(c))
