"""Ages that hold still (issue 29): the same face gets about the same age at any photo size.

The bundled networks read a face's age off a 64x64 chip; cut with dlib's pyramid-then-bilinear
sampling, the chip's detail depended on the photo's size, and a half-pixel shift of it moved the
answer by years. The chips are now cut at one canonical resolution with dlib's alignment, on the
5 points averaged with the mirrored face's, and averaged over a few variants (models/chips.py,
models/agegender_bundled.py).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import dlib
import numpy as np
import pytest

from bench.ages import iou, versions
from faces.models.agegender_bundled import BundledAgeGender, rgb_of
from faces.models.chips import PLAIN, ChipSpec, cut_chips, dlib_mapping
from faces.models.detect import Box

# Tom Cruise in dlib's example photos, his face 386 px wide: the sharp large face whose age grew
# with its pixels (bench/ages.py): 12.1 years apart over the eight copies below before issue 29,
# 4.4-4.9 with the anti-aliased chips of its first round, 2.3 at one canonical resolution.
PHOTO, FACE = "Tom_Cruise_avp_2014_4.jpg", Box(76, 290, 386, 386)
SPREAD_BOUND = 3.0  # years, issue 29's target


@pytest.fixture(scope="module")
def analyzer():
    import faces

    return faces.FaceAnalyzer(agegender="dlib")


@pytest.fixture(scope="module")
def model() -> BundledAgeGender:
    return BundledAgeGender()


def test_one_face_at_four_sizes_and_mirrored_gets_ages_within_three_years(analyzer, dlib_faces_dir):
    """The face saved (JPEG) at 60, 110, 190 and 270 px wide and each copy mirrored, analysed
    whole by the library: all eight found, one gender, ages at most 3 years apart."""
    pixels = _read(dlib_faces_dir / PHOTO)
    ages, genders = {}, set()
    for label, image, expected in versions(pixels, FACE):
        result = analyzer.analyze(image)
        face = max(result["faces"], key=lambda f: iou(Box(**f["box"]), expected))
        assert iou(Box(**face["box"]), expected) > 0.3, label
        assert face["age_range"][0] <= face["age"] <= face["age_range"][1]
        ages[label] = face["age"]
        genders.add(face["gender"]["label"])
    assert len(ages) == 8
    assert genders == {"Man"}
    spread = max(ages.values()) - min(ages.values())
    assert spread <= SPREAD_BOUND, {k: round(v, 1) for k, v in ages.items()}


def _read(path: Path) -> np.ndarray:
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert pixels is not None, path
    return pixels


def _shape(model: BundledAgeGender, rgb: np.ndarray, box: Box):
    return model.shape_predictor(rgb, dlib.rectangle(box.x, box.y, box.x + box.w - 1, box.y + box.h - 1))


def _small_astronaut() -> tuple[np.ndarray, Box]:
    """Eileen Collins at half size: her face 46 px wide, smaller than the chip (no low-pass)."""
    from tests.images import DATA

    photo = _read(DATA / "astronaut.jpg")
    return rgb_of(cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)), Box(87, 38, 46, 46)


def test_the_chips_keep_dlibs_alignment(model):
    """Our alignment from float points is dlib's get_face_chip_details on the same (integer)
    points, exactly; where nothing is shrunk or blurred (a face smaller than the chip), our chip
    is dlib's extract_image_chip but for the supersampling's averaging (each chip pixel the mean
    of 2x2 samples, not one bilinear tap)."""
    from faces.models.agegender_bundled import chip_details  # here: the spread test runs on older code too

    rgb, box = _small_astronaut()
    shape = _shape(model, rgb, box)
    details = dlib.get_face_chip_details(shape, 64, 0.2)
    points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], dtype=np.float64)
    assert np.allclose(dlib_mapping(chip_details(points, 64)), dlib_mapping(details), atol=1e-9)
    ours = cut_chips(rgb, ChipSpec(dlib_mapping(details), 64, PLAIN))
    difference = np.abs(ours[0].astype(int) - dlib.extract_image_chip(rgb, details))
    assert difference.mean() < 2.0 and np.percentile(difference, 99) <= 12


def test_a_mirrored_photo_gives_the_mirrored_chips_and_the_same_answer(model):
    """The 5 points are averaged with the mirrored face's, and the mirror variant flips about the
    face's axis: the mirrored photo's chips are the photo's, mirror and plain swapped, to
    rounding, so its age is the photo's. On dlib's points alone (the predictor is not symmetric)
    they were 4.5 grey levels apart on average on this face of group.jpg."""
    from tests.images import DATA

    rgb, box = rgb_of(_read(DATA / "group.jpg")), Box(987, 522, 109, 108)
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    mirrored_box = Box(rgb.shape[1] - box.x - box.w, box.y, box.w, box.h)
    chips, flipped = model.chips(rgb, box), model.chips(mirrored, mirrored_box)
    inner = (slice(4, -4), slice(4, -4))
    for ours, theirs in ((chips.age[0], flipped.age[1]), (chips.age[1], flipped.age[0])):
        assert np.abs(ours[inner].astype(int) - theirs[inner]).mean() < 0.5
    [a], [b] = model.predict([chips]), model.predict([flipped])
    assert abs(a.age - b.age) < 0.2 and a.gender_label == b.gender_label
    # Flipping about the chip's centre instead of the face's axis puts the face 0.9 px off.
    assert np.abs(chips.age[0][:, ::-1][inner].astype(int) - flipped.age[0][inner]).mean() > 3.0


def test_deepfaces_input_of_a_large_face_is_area_shrunk(dlib_faces_dir):
    """DeepFace's 224x224 input of a 644 px face (a photo enlarged 2x) is close to that of the
    same face at 322 px: shrunk with area averaging, not bilinearly (which skips pixels above
    2x: mean difference 0.0017 of the 0..1 range before, 0.0011 now)."""
    from faces.models.agegender import crop_face

    photo = _read(dlib_faces_dir / "bald_guys.jpg")
    box = Box(1418, 99, 322, 322)
    enlarged = cv2.resize(photo, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    small = crop_face(photo, box)
    large = crop_face(enlarged, Box(2 * box.x, 2 * box.y, 2 * box.w, 2 * box.h))
    assert small.shape == large.shape == (224, 224, 3)
    assert float(np.abs(small - large).mean()) < 0.0014
