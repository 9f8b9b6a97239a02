"""Age and gender: DeepFace's preprocessing and networks, one shared trunk, batching.

The weights are random (tests/fixtures_models.py writes them in DeepFace's layout), so the
ages and genders mean nothing; what is proven is that this module computes exactly what
DeepFace itself computes from the same files, faster.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from faces.models.agegender import (
    AgeGender,
    EmptyFaceCrop,
    WeightsMissing,
    WeightsUnreadable,
    crop_face,
    load_agegender,
)
from faces.models.detect import Box
from faces.models.landmarks import eye_centres
from faces.models.precision import (
    FLOAT32,
    OPENCV_FLOAT32,
    PRECISION_ENV,
    PrecisionError,
    choose_precision,
    cpu_flags,
    cpu_has_native_bf16,
)
from faces.models.vgg_weights import WEIGHTED_LAYERS

TOLERANCE = 1e-4
PHOTO = "2008_007676.jpg"


@pytest.fixture(scope="module")
def faces(decoded_photos, default_detector, landmarker):
    """(photo, boxes, 68-point sets) for four detected faces of one photo."""
    pixels = decoded_photos[PHOTO]
    boxes = [d.box for d in default_detector.detect([pixels])[0]][:4]
    points = [face.points for face in landmarker.locate(pixels, boxes)]
    return pixels, boxes, points


@pytest.fixture(scope="module")
def crops(faces):
    pixels, boxes, points = faces
    return np.stack([crop_face(pixels, box, pts) for box, pts in zip(boxes, points)])


def _weights(home):
    return home / ".deepface" / "weights"


def _deepface_reference(home, crops, faces, monkeypatch_module):
    """What DeepFace's own code computes from the weight files under ``home``.

    Builds DeepFace's Age and Gender clients (their own graph and weight loading) and runs
    DeepFace.analyze on the photo with a detector that reports our boxes and eyes, then
    drops the models to keep the test run's memory low.
    """
    monkeypatch_module.setenv("DEEPFACE_HOME", str(home))
    from deepface import DeepFace
    from deepface.modules import modeling

    empty_cache = {task: {} for task in modeling.AVAILABLE_MODELS}
    monkeypatch_module.setattr(modeling, "cached_models", empty_cache, raising=False)
    detectors = modeling.AVAILABLE_MODELS["face_detector"]
    monkeypatch_module.setitem(detectors, "faces-fixed", {"any": f"{__name__}.FixedFaces"})
    pixels, boxes, points = faces
    FixedFaces.faces = [(box, eye_centres(pts)) for box, pts in zip(boxes, points)]
    analysed = DeepFace.analyze(pixels, actions=("age", "gender"), detector_backend="faces-fixed", silent=True)
    age_client = modeling.build_model(task="facial_attribute", model_name="Age")
    gender_client = modeling.build_model(task="facial_attribute", model_name="Gender")
    reference = {
        "analysed": analysed,
        "age_probs": age_client.model.predict_on_batch(crops),
        "gender_probs": gender_client.model.predict_on_batch(crops),
        "ages": age_client.predict(crops),
    }
    modeling.cached_models = {task: {} for task in modeling.AVAILABLE_MODELS}
    del age_client, gender_client
    gc.collect()
    return reference


class FixedFaces:
    """A DeepFace detector reporting the boxes and eyes this test found (set in ``faces``).

    DeepFace detects on the photo padded by half its size, hence the offsets.
    """

    faces: list = []

    def detect_faces(self, img):
        # The padded side is n + 2 * int(n / 2), so a quarter of it (rounded down) is the pad.
        pad_x, pad_y = img.shape[1] // 4, img.shape[0] // 4
        # DeepFace's left eye is the person's left: the one on the image's right.
        return [
            _padded_region(box, image_right_eye, image_left_eye, pad_x, pad_y, confidence=0.99)
            for box, (image_left_eye, image_right_eye) in self.faces
        ]


def _padded_region(box, left_eye, right_eye, pad_x, pad_y, **extra):
    """A DeepFace FacialAreaRegion of ``box`` and the eyes, on the photo padded by (pad_x, pad_y)."""
    from deepface.models.Detector import FacialAreaRegion

    return FacialAreaRegion(
        x=box.x + pad_x,
        y=box.y + pad_y,
        w=box.w,
        h=box.h,
        left_eye=(left_eye[0] + pad_x, left_eye[1] + pad_y),
        right_eye=(right_eye[0] + pad_x, right_eye[1] + pad_y),
        **extra,
    )


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def shared_model(synthetic_deepface_home_shared):
    # float32 is DeepFace's own arithmetic; bfloat16 is checked against it below.
    return load_agegender(_weights(synthetic_deepface_home_shared), precision="float32")


def _assert_same_as_deepface(model, crops, faces, reference):
    age_probs, gender_probs = model.predict_probabilities(crops)
    assert np.abs(age_probs - reference["age_probs"]).max() <= TOLERANCE
    assert np.abs(gender_probs - reference["gender_probs"]).max() <= TOLERANCE
    results = model.predict(crops)
    assert all(isinstance(r, AgeGender) for r in results)
    np.testing.assert_allclose([r.age for r in results], reference["ages"], atol=100 * TOLERANCE)
    # DeepFace.analyze on the whole photo, with its own cropping, gives the same answers.
    analysed = reference["analysed"]
    assert [(a["region"]["x"], a["region"]["y"]) for a in analysed] == [(b.x, b.y) for b in faces[1]]
    for ours, theirs in zip(results, analysed):
        assert abs(ours.age - theirs["age"]) < 1  # DeepFace truncates to whole years
        assert ours.gender_label == theirs["dominant_gender"]
        for label in ("Woman", "Man"):
            theirs_percent = theirs["gender"][label]
            assert ours.gender_scores[label] * 100 == pytest.approx(theirs_percent, abs=100 * TOLERANCE)


def test_shared_trunk_weights_run_one_trunk_and_match_deepface(
    shared_model, synthetic_deepface_home_shared, crops, faces, monkeypatch_module
):
    assert shared_model.shared_trunk is True
    reference = _deepface_reference(synthetic_deepface_home_shared, crops, faces, monkeypatch_module)
    _assert_same_as_deepface(shared_model, crops, faces, reference)
    # The other float32 engine (OpenCV's DNN, what auto runs on AVX2-only CPUs) too.
    opencv = load_agegender(_weights(synthetic_deepface_home_shared), precision=OPENCV_FLOAT32)
    assert (opencv.shared_trunk, opencv.name) == (True, "deepface-age+gender/shared-trunk/opencv-float32")
    _assert_same_as_deepface(opencv, crops, faces, reference)


@pytest.mark.long  # two 540 MB networks and DeepFace's own run: about a minute; the shared trunk above stays in make test
def test_separate_trunks_run_both_full_models_and_match_deepface(
    synthetic_deepface_home_separate, crops, faces, monkeypatch_module
):
    reference = _deepface_reference(synthetic_deepface_home_separate, crops, faces, monkeypatch_module)
    for precision in (FLOAT32, OPENCV_FLOAT32):
        model = load_agegender(_weights(synthetic_deepface_home_separate), precision=precision)
        assert model.shared_trunk is False
        _assert_same_as_deepface(model, crops, faces, reference)
        del model
        gc.collect()


def test_opencv_float32_moves_the_probabilities_by_summation_order_only(
    shared_model, synthetic_deepface_home_shared, crops
):
    opencv = load_agegender(_weights(synthetic_deepface_home_shared), precision=OPENCV_FLOAT32)
    age_cv, gender_cv = opencv.predict_probabilities(crops)
    age_tf, gender_tf = shared_model.predict_probabilities(crops)
    assert age_cv.dtype == gender_cv.dtype == np.float32
    assert np.abs(age_cv - age_tf).max() <= 1e-5
    assert np.abs(gender_cv - gender_tf).max() <= 1e-5
    np.testing.assert_allclose(
        [r.age for r in opencv.predict(crops)], [r.age for r in shared_model.predict(crops)], atol=1e-3
    )
    assert opencv.predict(crops[:0]) == []


def test_the_opencv_engine_never_imports_tensorflow(synthetic_deepface_home_shared, crops):
    # A fresh process: what a worker on an AVX2-only CPU loads, and why it starts sooner.
    script = (
        "import sys, numpy as np; from faces.models.agegender import load_agegender; "
        f"m = load_agegender({str(_weights(synthetic_deepface_home_shared))!r}, precision='opencv-float32'); "
        "r = m.predict(np.zeros((2, 224, 224, 3), np.float32)); "
        "print(len(r), m.name, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=repo.parent, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["2", "deepface-age+gender/shared-trunk/opencv-float32", "False", "False"]


def test_a_batch_gives_the_same_results_as_one_face_at_a_time(shared_model, crops):
    batch_age, batch_gender = shared_model.predict_probabilities(crops)
    for i in range(len(crops)):
        age, gender = shared_model.predict_probabilities(crops[i : i + 1])
        assert np.abs(age[0] - batch_age[i]).max() <= TOLERANCE
        assert np.abs(gender[0] - batch_gender[i]).max() <= TOLERANCE
    assert shared_model.predict(crops[:0]) == []


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no bfloat16 arithmetic; auto never picks it")
def test_bfloat16_stays_close_to_float32_and_says_so(shared_model, synthetic_deepface_home_shared, crops):
    model = load_agegender(_weights(synthetic_deepface_home_shared), precision="bfloat16")
    assert (model.name, shared_model.name) == (
        "deepface-age+gender/shared-trunk/bfloat16",
        "deepface-age+gender/shared-trunk",
    )
    age16, gender16 = model.predict_probabilities(crops)
    age32, gender32 = shared_model.predict_probabilities(crops)
    assert age16.dtype == gender16.dtype == np.float32
    # Random weights spread the probabilities thinly, so these bounds say little about real
    # weights; they do catch a wrong cast (bfloat16 softmax, weights not rounded but lost).
    assert 0 < np.abs(age16 - age32).max() <= 0.01
    assert np.abs(gender16 - gender32).max() <= 0.02
    ages16 = [r.age for r in model.predict(crops)]
    ages32 = [r.age for r in shared_model.predict(crops)]
    np.testing.assert_allclose(ages16, ages32, atol=0.5)
    del model
    gc.collect()


def test_precision_auto_takes_bfloat16_only_where_the_cpu_has_it(tmp_path, monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    avx2, avx512 = frozenset({"fpu", "avx2"}), frozenset({"fpu", "avx2", "avx512f"})
    assert choose_precision(flags=avx512 | {"amx_bf16"}) == "bfloat16"
    assert choose_precision(flags=avx2 | {"avx512_bf16"}) == "bfloat16"
    assert choose_precision(flags=avx512) == "float32"
    assert choose_precision(flags=avx2) == "opencv-float32"
    assert choose_precision(flags=frozenset()) == "opencv-float32"  # flags unknown: no TensorFlow
    assert choose_precision("float32", flags=avx512 | {"amx_bf16"}) == "float32"
    monkeypatch.setenv(PRECISION_ENV, "BFloat16")
    assert choose_precision(flags=avx2) == "bfloat16"
    monkeypatch.setenv(PRECISION_ENV, "OpenCV-Float32")
    assert choose_precision(flags=avx512) == "opencv-float32"
    monkeypatch.setenv(PRECISION_ENV, "half")
    with pytest.raises(PrecisionError, match=PRECISION_ENV):
        choose_precision()
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16(cpuinfo) is True
    assert "avx512f" in cpu_flags(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n")
    assert cpu_has_native_bf16(cpuinfo) is False
    assert cpu_has_native_bf16(tmp_path / "absent") is False
    assert cpu_flags(tmp_path / "absent") == frozenset()


def test_results_are_summaries_of_the_distributions(shared_model, crops):
    (result,) = shared_model.predict(crops[:1])
    age_probs, gender_probs = shared_model.predict_probabilities(crops[:1])
    assert result.age == pytest.approx(float(np.sum(age_probs[0] * np.arange(101))), abs=1e-3)
    assert result.age_range[0] <= result.age <= result.age_range[1]
    assert set(result.gender_scores) == {"Woman", "Man"}
    assert sum(result.gender_scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.gender_confidence == max(result.gender_scores.values())
    assert result.gender_label == max(result.gender_scores, key=result.gender_scores.get)


def test_missing_weights_name_the_file_and_the_fetch_command(tmp_path, monkeypatch):
    with pytest.raises(WeightsMissing, match="age_model_weights.h5") as info:
        load_agegender(tmp_path)
    assert "faces models fetch" in str(info.value)
    (tmp_path / "age_model_weights.h5").write_bytes(b"")
    with pytest.raises(WeightsMissing, match="gender_model_weights.h5"):
        load_agegender(tmp_path)
    # Without a folder, DeepFace's own one under $DEEPFACE_HOME is used.
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    with pytest.raises(WeightsMissing, match=str(tmp_path / ".deepface" / "weights")):
        load_agegender()


def test_a_damaged_weight_file_is_a_named_error(tmp_path):
    # Refused by the TensorFlow-free reader that compares the trunks, before any engine loads:
    # the same for every precision.
    (tmp_path / "age_model_weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n but cut short")
    (tmp_path / "gender_model_weights.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(WeightsUnreadable, match="faces models fetch"):
        load_agegender(tmp_path)


def test_a_weight_file_of_another_shape_is_a_named_error_on_the_opencv_engine(tmp_path, synthetic_deepface_home_shared):
    # Sixteen weighted layers, as DeepFace's, but the first convolution takes 4 channels.
    for name in ("age_model_weights.h5", "gender_model_weights.h5"):
        shutil.copy(_weights(synthetic_deepface_home_shared) / name, tmp_path / name)
    with h5py.File(tmp_path / "age_model_weights.h5", "r+") as file:
        group = file if "layer_names" in file.attrs else file["model_weights"]
        first = [n for n in group.attrs["layer_names"] if len(group[n].attrs.get("weight_names", ()))][0]
        kernel_name = group[first].attrs["weight_names"][0]
        kernel_name = kernel_name.decode() if isinstance(kernel_name, bytes) else kernel_name
        del group[first][kernel_name]
        group[first].create_dataset(kernel_name, data=np.zeros((3, 3, 4, 64), np.float32))
    with pytest.raises(WeightsUnreadable, match=r"\(3, 3, 4, 64\)"):
        load_agegender(tmp_path, precision=OPENCV_FLOAT32)


def test_swapped_weight_files_are_refused_at_load_on_the_opencv_engine(tmp_path, synthetic_deepface_home_shared):
    # The same trunk, so one shared model is built; the heads give 2 ages and 101 genders.
    weights = _weights(synthetic_deepface_home_shared)
    shutil.copy(weights / "age_model_weights.h5", tmp_path / "gender_model_weights.h5")
    shutil.copy(weights / "gender_model_weights.h5", tmp_path / "age_model_weights.h5")
    with pytest.raises(WeightsUnreadable, match="2 classes, DeepFace's gives 101"):
        load_agegender(tmp_path, precision=OPENCV_FLOAT32)


@pytest.mark.parametrize(
    "first_layer",
    [
        {
            "kernel": np.zeros((1, 1, 1, 1), np.float32),
            "bias": np.zeros(1, np.float32),
            "scale": np.zeros(1, np.float32),
        },  # three datasets
        {"kernel": np.zeros((), np.float32), "bias": np.zeros(1, np.float32)},  # a 0-d kernel
    ],
)
def test_a_layer_that_is_not_a_kernel_and_a_bias_is_a_named_error_on_the_opencv_engine(tmp_path, first_layer):
    layers = [f"layer{i}" for i in range(WEIGHTED_LAYERS)]
    for name in ("age_model_weights.h5", "gender_model_weights.h5"):
        with h5py.File(tmp_path / name, "w") as file:
            file.attrs["layer_names"] = [layer.encode() for layer in layers]
            for index, layer in enumerate(layers):
                datasets = (
                    first_layer
                    if index == 0
                    else {"kernel": np.zeros((1, 1, 1, 1), np.float32), "bias": np.zeros(1, np.float32)}
                )
                group = file.create_group(layer)
                group.attrs["weight_names"] = [key.encode() for key in datasets]
                for key, value in datasets.items():
                    group.create_dataset(key, data=value)
    with pytest.raises(WeightsUnreadable, match="not a kernel and a bias"):
        load_agegender(tmp_path, precision=OPENCV_FLOAT32)


def _deepface_crop(image, box, left_eye, right_eye):
    """DeepFace's own path: pad the photo, extract_face(align=True), then the colour flips,
    scaling and resize of extract_faces and analyze."""
    from deepface.modules import detection, preprocessing

    height, width = image.shape[:2]
    pad_y, pad_x = int(0.5 * height), int(0.5 * width)
    padded = cv2.copyMakeBorder(image, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=[0, 0, 0])
    region = _padded_region(box, left_eye, right_eye, pad_x, pad_y)
    face = detection.extract_face(region, padded, True, 0, pad_x, pad_y, "dlib").img
    face = face[:, :, ::-1]
    if face.max() > 1:
        face = face / 255
    return preprocessing.resize_image(face[:, :, ::-1], (224, 224))[0]


def test_crop_equals_deepfaces_own_preprocessing(faces):
    pixels, boxes, points = faces
    height, width = pixels.shape[:2]
    tilted = cv2.warpAffine(pixels, cv2.getRotationMatrix2D((width / 2, height / 2), 25, 1.0), (width, height))
    cases = [(pixels, box, pts) for box, pts in zip(boxes, points)]
    # A box poking out of the photo's corner and a face tilted by 25 degrees.
    corner = Box(-20, -15, 90, 80)
    cases.append((pixels, corner, points[0]))
    cases.append((tilted, boxes[0], points[0]))
    for image, box, pts in cases:
        image_left, image_right = eye_centres(pts)
        crop = crop_face(image, box, pts)
        assert crop.shape == (224, 224, 3) and crop.dtype == np.float32
        assert 0.0 <= crop.min() and crop.max() <= 1.0
        np.testing.assert_array_equal(crop, _deepface_crop(image, box, image_right, image_left))


def test_crop_turns_the_eyes_level(faces):
    pixels, boxes, points = faces
    box, pts = boxes[0], points[0]
    crop = crop_face(pixels, box, pts)
    # Rotated by 20 degrees, the same face comes out nearly the same once levelled.
    height, width = pixels.shape[:2]
    turn = cv2.getRotationMatrix2D((box.x + box.w / 2, box.y + box.h / 2), 20, 1.0)
    rotated = cv2.warpAffine(pixels, turn, (width, height), flags=cv2.INTER_CUBIC)
    moved = cv2.transform(np.asarray(pts, np.float64)[None], turn)[0]
    levelled = crop_face(rotated, box, [tuple(p) for p in moved])
    unlevelled = crop_face(rotated, box, None)
    assert np.abs(levelled - crop).mean() < np.abs(unlevelled - crop).mean() / 2


def test_a_box_outside_the_photo_has_no_crop(faces):
    pixels = faces[0]
    with pytest.raises(EmptyFaceCrop):
        crop_face(pixels, Box(pixels.shape[1] * 3, 0, 40, 40), None)


def test_tensorflow_threads_come_from_the_environment():
    # A fresh process: TensorFlow takes thread settings only before its first op.
    script = "from models.tf_runtime import configure_threads; print(configure_threads())"
    env = {**os.environ, "FACES_TF_THREADS": "1"}
    repo = Path(__file__).resolve().parents[2]
    run = {"env": env, "cwd": repo, "capture_output": True, "text": True}
    done = subprocess.run([sys.executable, "-c", script], check=True, **run)
    assert done.stdout.strip().splitlines()[-1] == "(1, 1)"
    env["FACES_TF_THREADS"] = "two"
    failed = subprocess.run([sys.executable, "-c", script], **run)
    assert failed.returncode != 0 and "TensorFlowThreadsError" in failed.stderr
