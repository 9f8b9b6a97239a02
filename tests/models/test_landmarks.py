"""68-point landmarks against dlib's reference file, head pose conventions, crop quality."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from faces.models.detect import Box
from faces.models.landmarks import FaceLandmarks, eye_centres
from faces.models.pose import _MODEL_INDEXES, _MODEL_POINTS, estimate_pose
from faces.models.quality import measure_quality
from tests.annotations import match_boxes


def _mean_error(found: tuple, expected: tuple) -> float:
    return float(np.linalg.norm(np.asarray(found) - np.asarray(expected), axis=1).mean())


def test_points_from_the_files_boxes_match_dlibs_reference_points(landmarker, landmark_images, decoded_photos):
    errors = []
    for image in landmark_images:
        faces = landmarker.locate(decoded_photos[image.path.name], [face.box for face in image.faces])
        assert len(faces) == len(image.faces)
        for face, truth in zip(faces, image.faces):
            assert isinstance(face, FaceLandmarks) and len(face.points) == 68
            errors.append(_mean_error(face.points, truth.points))
    assert len(errors) == 43
    assert np.mean(errors) <= 0.5, f"mean error {np.mean(errors):.2f} px"


def test_points_from_detected_boxes_are_within_5_percent_of_the_eye_distance(
    default_detector, landmarker, landmark_images, decoded_photos
):
    normalised = []
    for image in landmark_images:
        pixels = decoded_photos[image.path.name]
        detections = default_detector.detect([pixels])[0]
        pairs = match_boxes([d.box for d in detections], [f.box for f in image.faces], 0.3)
        faces = landmarker.locate(pixels, [detections[i].box for i, _ in pairs])
        for face, (_, j) in zip(faces, pairs):
            truth = image.faces[j].points
            # Inter-ocular distance: between the two eye centres (means of 36-41 and 42-47).
            left, right = eye_centres(truth)
            normalised.append(_mean_error(face.points, truth) / math.dist(left, right))
    assert len(normalised) >= 41
    assert np.mean(normalised) <= 0.05, f"mean error {np.mean(normalised):.3f} of the eye distance"


def test_no_boxes_give_no_faces(landmarker, decoded_photos):
    assert landmarker.locate(decoded_photos["2008_001009.jpg"], []) == []


def _project(yaw: float, pitch: float, roll: float) -> list[tuple[float, float]]:
    """Image points of the generic face turned by the given angles (module conventions)."""
    b, a, c = -math.radians(yaw), -math.radians(pitch), math.radians(roll)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    camera = np.array([[640.0, 0, 320], [0, 640, 240], [0, 0, 1]])
    rvec, _ = cv2.Rodrigues(rx @ ry @ rz)
    projected, _ = cv2.projectPoints(_MODEL_POINTS, rvec, np.array([0.0, 0, 3000]), camera, None)
    points = [(0.0, 0.0)] * 68
    for index, (x, y) in zip(_MODEL_INDEXES, projected.reshape(-1, 2)):
        points[index] = (float(x), float(y))
    return points


@pytest.mark.parametrize("yaw, pitch, roll", [(0, 0, 0), (30, 0, 0), (-25, 10, 5), (10, -15, -20)])
def test_pose_recovers_known_angles_of_the_generic_face(yaw, pitch, roll):
    pose = estimate_pose(_project(yaw, pitch, roll), 640, 480)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((yaw, pitch, roll), abs=1.0)


def test_pose_signs_follow_the_documented_conventions():
    points = _project(30, 0, 0)
    nose, left_eye, right_eye = points[30], points[36], points[45]
    # Yaw > 0 turns the nose toward the image's right: it moves right of the eyes' midpoint.
    assert nose[0] > (left_eye[0] + right_eye[0]) / 2
    tilted = _project(0, 0, 20)
    # Roll > 0 is clockwise on screen: the eye on the image's right sits lower (larger y).
    assert tilted[45][1] > tilted[36][1]
    assert estimate_pose(tilted, 640, 480).roll > 0


def test_a_mirrored_photo_flips_yaw_and_roll(default_detector, landmarker, decoded_photos):
    pixels = decoded_photos["2008_002079.jpg"]
    mirrored = np.ascontiguousarray(pixels[:, ::-1])
    width = pixels.shape[1]
    boxes = [d.box for d in default_detector.detect([pixels])[0]]
    mirrored_boxes = [Box(width - b.x - b.w, b.y, b.w, b.h) for b in boxes]
    poses = [f.pose for f in landmarker.locate(pixels, boxes)]
    flipped = [f.pose for f in landmarker.locate(mirrored, mirrored_boxes)]
    turned = [(p, q) for p, q in zip(poses, flipped) if abs(p.yaw) >= 15]
    assert len(turned) >= 3
    for pose, mirror in turned:
        assert math.copysign(1, pose.yaw) == -math.copysign(1, mirror.yaw)
        assert abs(pose.yaw + mirror.yaw) < 0.5 * abs(pose.yaw)
        assert abs(pose.pitch - mirror.pitch) < 10


def test_quality_drops_with_blur_and_tracks_brightness(decoded_photos):
    pixels = decoded_photos["2008_001009.jpg"]
    box = Box(145, 79, 76, 76)
    sharp = measure_quality(pixels, box)
    blurred = measure_quality(cv2.GaussianBlur(pixels, (0, 0), 3), box)
    darker = measure_quality((pixels // 2).astype(np.uint8), box)
    assert blurred.sharpness < sharp.sharpness / 3
    assert darker.brightness == pytest.approx(sharp.brightness / 2, abs=1.0)
    assert 0 < sharp.brightness < 255 and sharp.contrast > 0
    assert measure_quality(pixels, Box(5000, 5000, 10, 10)).sharpness == 0.0
