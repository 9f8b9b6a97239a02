"""Face detection: accuracy of the default backend, scaling of large photos, the registry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faces.models.detect import (
    BACKENDS,
    DEFAULT_BACKEND,
    BackendUnavailable,
    Box,
    Detection,
    ScalePlan,
    UnknownBackend,
    load_detector,
    plan_scale,
)
from tests.annotations import match_boxes

MIN_IOU = 0.3


def test_box_iou_is_overlap_over_union():
    box = Box(0, 0, 10, 10)
    assert box.iou(box) == 1.0
    assert box.iou(Box(20, 20, 5, 5)) == 0.0
    # Half of each box overlaps: 50 / (100 + 100 - 50).
    assert box.iou(Box(5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_default_backend_finds_annotated_faces_with_few_false_positives(
    default_detector, annotated_images, decoded_photos
):
    assert default_detector.name == DEFAULT_BACKEND
    found = total = false_positives = 0
    for image in annotated_images:
        detections = default_detector.detect([decoded_photos[image.path.name]])[0]
        truth = [face.box for face in image.faces]
        pairs = match_boxes([d.box for d in detections], truth, MIN_IOU)
        found += len(pairs)
        total += len(truth)
        false_positives += len(detections) - len(pairs)
    assert total == 43
    assert found / total >= 0.95, f"recall {found}/{total}"
    assert false_positives <= 2


def test_detections_carry_scores_best_first_and_lie_inside_the_image(default_detector, decoded_photos):
    pixels = decoded_photos["2007_007763.jpg"]
    detections = default_detector.detect([pixels])[0]
    assert len(detections) >= 5
    scores = [d.score for d in detections]
    assert all(isinstance(d, Detection) and np.isfinite(d.score) for d in detections)
    assert scores == sorted(scores, reverse=True)
    height, width = pixels.shape[:2]
    for d in detections:
        assert d.box.x >= 0 and d.box.y >= 0 and d.box.w > 0 and d.box.h > 0
        assert d.box.x + d.box.w <= width and d.box.y + d.box.h <= height


def test_a_batch_gives_the_same_boxes_as_one_image_at_a_time(default_detector, decoded_photos):
    first, second = decoded_photos["2008_001009.jpg"], decoded_photos["2008_001322.jpg"]
    batch = default_detector.detect([first, second])
    assert batch == [default_detector.detect([first])[0], default_detector.detect([second])[0]]
    assert default_detector.detect([]) == []


def test_large_photo_is_detected_on_a_shrunk_copy_and_boxes_map_back(annotated_images, decoded_photos):
    image = next(i for i in annotated_images if i.path.name == "2008_001322.jpg")
    large = cv2.resize(decoded_photos[image.path.name], None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    # A 1 MP budget forces the 2000x1500 photo down to ~0.58x of its size.
    detector = load_detector(DEFAULT_BACKEND, max_work_pixels=1_000_000)
    assert detector.plan(large).resize < 0.6
    detections = detector.detect([large])[0]
    truth = [Box(4 * b.x, 4 * b.y, 4 * b.w, 4 * b.h) for b in (face.box for face in image.faces)]
    pairs = match_boxes([d.box for d in detections], truth, 0.5)
    assert len(pairs) == len(truth) == len(detections)
    # Boxes are in the large photo's pixels: as big as the scaled annotations.
    for i, j in pairs:
        assert 0.7 < detections[i].box.w / truth[j].w < 1.4


def test_faces_of_40_px_are_still_found_in_a_large_photo(default_detector, annotated_images, decoded_photos):
    image = next(i for i in annotated_images if i.path.name == "2007_007763.jpg")
    small_faces = decoded_photos[image.path.name]
    assert max(face.box.w for face in image.faces) <= 45
    # The photo pasted at its own size into a 3 MP canvas: the faces stay 37-45 px.
    canvas = np.full((1500, 2000, 3), 127, np.uint8)
    canvas[600 : 600 + small_faces.shape[0], 900 : 900 + small_faces.shape[1]] = small_faces
    truth = [Box(b.x + 900, b.y + 600, b.w, b.h) for b in (face.box for face in image.faces)]
    detections = default_detector.detect([canvas])[0]
    pairs = match_boxes([d.box for d in detections], truth, MIN_IOU)
    assert len(pairs) >= len(truth) - 1


def test_scale_plan_magnifies_small_photos_and_shrinks_large_ones():
    # 500x375 with HOG's 80 px window and 40 px faces: dlib's own single upsampling.
    assert plan_scale(500, 375, native_min_face=80, max_upsample=3) == ScalePlan(resize=1.0, upsample=1)
    # 12 MP over a 16 MP budget: shrunk, then doubled by the backend, 1.15x overall.
    plan = plan_scale(4000, 3000, native_min_face=80, max_upsample=3)
    assert plan.upsample == 1 and plan.resize == pytest.approx(0.577, abs=0.01)
    assert 4000 * 3000 * plan.magnification**2 <= 16_000_000 * 1.001
    # A backend that cannot upsample is resized by the whole factor.
    assert plan_scale(500, 375, native_min_face=80, max_upsample=0).resize == pytest.approx(2.0)
    # Asking for larger faces only lets the detector shrink the photo.
    assert plan_scale(4000, 3000, native_min_face=80, max_upsample=3, min_face_px=160).magnification <= 0.5


def test_unknown_backend_is_a_named_error_listing_the_choices():
    with pytest.raises(UnknownBackend, match="dlib-hog") as info:
        load_detector("retinaface")
    assert isinstance(info.value, ValueError)
    assert set(BACKENDS) == {"dlib-hog", "opencv-haar", "dlib-cnn", "opencv-yunet"}


def test_yunet_without_its_onnx_file_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    monkeypatch.delenv("FACES_YUNET_MODEL", raising=False)
    with pytest.raises(BackendUnavailable, match="face_detection_yunet_2023mar.onnx"):
        load_detector("opencv-yunet")


def test_haar_backend_finds_large_frontal_faces_with_scores(annotated_images, decoded_photos):
    image = next(i for i in annotated_images if i.path.name == "2008_001009.jpg")
    detections = load_detector("opencv-haar").detect([decoded_photos[image.path.name]])[0]
    pairs = match_boxes([d.box for d in detections], [f.box for f in image.faces], MIN_IOU)
    assert len(pairs) == 2
    assert all(d.score > 0 for d in detections)


def test_cnn_backend_finds_large_faces(annotated_images, decoded_photos):
    image = next(i for i in annotated_images if i.path.name == "2008_001009.jpg")
    # Faces here are 76-90 px: asking for 80 px faces spares the slow 2x upsampling.
    detector = load_detector("dlib-cnn", min_face_px=80)
    detections = detector.detect([decoded_photos[image.path.name]])[0]
    pairs = match_boxes([d.box for d in detections], [f.box for f in image.faces], MIN_IOU)
    assert len(pairs) == 2 and len(detections) == 2
    assert all(d.score > 0 for d in detections)


def test_a_non_bgr_array_is_refused(default_detector):
    with pytest.raises(ValueError, match="BGR uint8"):
        default_detector.detect([np.zeros((50, 50), np.uint8)])


def test_hog_on_gray_pixels_finds_the_faces_it_found_on_colour(default_detector, decoded_photos):
    """dlib's HOG runs on gray pixels (a third less CPU than on colour, issue 16): on every test
    photo it finds as many faces as on the colour pixels, nearly in the same places."""
    import dlib

    colour_hog = dlib.get_frontal_face_detector()
    for name, pixels in decoded_photos.items():
        plan = default_detector.plan(pixels)
        if plan.resize != 1.0:
            continue  # the plain colour run below has no resize step
        rects, scores, _ = colour_hog.run(np.ascontiguousarray(pixels[:, :, ::-1]), plan.upsample, 0.0)
        on_colour = [r for r, s in zip(rects, scores) if s >= default_detector.min_score]
        on_gray = default_detector.detect([pixels])[0]
        assert len(on_gray) == len(on_colour), name
        centres = [(r.center().x, r.center().y) for r in on_colour]
        for found in on_gray:
            cx, cy = found.box.x + found.box.w / 2, found.box.y + found.box.h / 2
            assert min(abs(cx - x) + abs(cy - y) for x, y in centres) <= found.box.w / 2, name
