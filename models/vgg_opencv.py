"""DeepFace's VGG-Face age and gender networks in float32 on OpenCV's DNN, without TensorFlow.

Why: on CPUs without bfloat16 or AVX-512, TensorFlow's float32 convolutions took 0.61 CPU s per
face here and OpenCV's (Winograd 3x3 convolutions) 0.32-0.36 (both capped at AVX2, one thread),
with outputs equal to 3e-5 on activations of about 5 (docs/benchmark.md). And a worker that
never imports TensorFlow starts seconds sooner, which is most of a cold `faces run` on a few photos.

What runs where: the 13 trunk convolutions and their max-pools in OpenCV; the heads (fc6 over
the 7x7x512 map flattened in Keras's order, fc7, the class layer, the softmax) as numpy matrix
products, the same sums as DeepFace's 7x7 and 1x1 convolutions (see ``models.vggface``).

How OpenCV gets the trunk: as a Darknet network, because OpenCV reads that format from memory
and numpy can write it: a text list of layers (``[convolutional]`` with filters, size 3, pad 1
and relu; ``[maxpool]`` size 2 stride 2, which on the even sizes 224..14 is Keras's pooling)
and one float32 blob (a header, then per convolution its biases and its kernel as (out, in,
row, column)). No converter package, no temporary file, no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faces.models.vgg_weights import (
    AGE_CLASSES,
    BLOCKS,
    GENDER_CLASSES,
    INPUT_SIDE,
    TRUNK_FEATURES,
    TRUNK_LAYERS,
    weight_file,
)
from faces.models.weights import WeightsUnreadable

# Darknet's weights header: version 0.2.0, then the count of images seen as 64 bits.
_DARKNET_HEADER = np.array([0, 2, 0], np.int32).tobytes() + np.zeros(1, np.int64).tobytes()
_RELU_LAYERS = 2  # fc6 and fc7 end in a relu; the class layer ends in the softmax


class _Trunk:
    """The convolution trunk as an OpenCV network: crops in, flattened features out."""

    def __init__(self, kernels: Sequence[tuple[np.ndarray, np.ndarray]], threads: int | None) -> None:
        config, blob = _darknet(kernels)
        self._net = cv2.dnn.readNetFromDarknet(np.frombuffer(config.encode(), np.uint8), np.frombuffer(blob, np.uint8))
        if threads is not None:
            cv2.setNumThreads(threads)

    def features(self, crops: np.ndarray) -> np.ndarray:
        """(n, 224, 224, 3) -> (n, 25088), flattened in Keras's (row, column, channel) order."""
        self._net.setInput(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))  # OpenCV is NCHW
        maps = self._net.forward()
        return maps.transpose(0, 2, 3, 1).reshape(len(crops), -1)


@dataclass(frozen=True)
class _Head:
    """fc6, fc7 and the class layer as (kernel (inputs, outputs), bias), then a softmax."""

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        x = features
        for index, (kernel, bias) in enumerate(self.layers):
            x = x @ kernel + bias
            if index < _RELU_LAYERS:
                np.maximum(x, 0, out=x)
        x = np.exp(x - x.max(axis=1, keepdims=True))
        return x / x.sum(axis=1, keepdims=True)


class OpenCVVgg:
    """One trunk and one or two heads; ``predict_on_batch`` answers like the Keras model it
    stands for: a list of probability arrays for two heads, the array itself for one."""

    def __init__(self, trunk: _Trunk, heads: list[_Head]) -> None:
        self._trunk, self._heads = trunk, heads

    def predict_on_batch(self, crops: np.ndarray):
        features = self._trunk.features(np.asarray(crops, np.float32))
        outputs = [head.probabilities(features) for head in self._heads]
        return outputs if len(outputs) > 1 else outputs[0]


def load_shared(age_path: Path, gender_path: Path, threads: int | None = None) -> OpenCVVgg:
    """One trunk (from ``age_path``; the caller checked both files hold the same) and both heads."""
    with weight_file(age_path) as age, weight_file(gender_path) as gender:
        trunk = _trunk(age_path, age[:TRUNK_LAYERS], threads)
        return OpenCVVgg(
            trunk,
            [
                _head(age_path, age[TRUNK_LAYERS:], AGE_CLASSES),
                _head(gender_path, gender[TRUNK_LAYERS:], GENDER_CLASSES),
            ],
        )


def load_single(path: Path, classes: int, threads: int | None = None) -> OpenCVVgg:
    """One full network (its own trunk and a head of ``classes``), as DeepFace runs each of the two."""
    with weight_file(path) as layers:
        return OpenCVVgg(_trunk(path, layers[:TRUNK_LAYERS], threads), [_head(path, layers[TRUNK_LAYERS:], classes)])


def _trunk(path: Path, layers, threads: int | None) -> _Trunk:
    """The trunk of the file at ``path``; ``WeightsUnreadable`` when its shapes are not VGG-16's."""
    kernels = _read(path, layers)
    inputs = 3
    for (kernel, bias), filters in zip(kernels, (f for f, convs in BLOCKS for _ in range(convs))):
        if kernel.shape != (3, 3, inputs, filters) or bias.shape != (filters,):
            raise WeightsUnreadable(
                path, f"a trunk layer is {kernel.shape} in the file, DeepFace's is {(3, 3, inputs, filters)}"
            )
        inputs = filters
    try:
        return _Trunk(kernels, threads)
    except cv2.error as err:
        raise WeightsUnreadable(path, f"OpenCV cannot build the trunk: {err}") from err


def _head(path: Path, layers, classes: int) -> _Head:
    """fc6, fc7 and the class layer of the file at ``path``, as matrices; ``WeightsUnreadable``
    when they do not chain from the trunk's 25,088 features to ``classes`` outputs (as
    TensorFlow's engine refuses them at load, e.g. the age and gender files swapped)."""
    head = _Head(_read(path, layers, matrices=True))
    inputs = TRUNK_FEATURES
    for kernel, bias in head.layers:
        if kernel.shape[0] != inputs or bias.shape != (kernel.shape[1],):
            raise WeightsUnreadable(path, f"a head layer of {kernel.shape} does not take {inputs} inputs")
        inputs = kernel.shape[1]
    if inputs != classes:
        raise WeightsUnreadable(path, f"the head gives {inputs} classes, DeepFace's gives {classes}")
    return head


def _read(path: Path, layers, matrices: bool = False) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(kernel, bias) per layer as float32; ``WeightsUnreadable`` for a layer that is not one
    kernel of at least two axes and one bias. With ``matrices``, a head's convolution kernels
    (rows, columns, in, out) become (rows * columns * in, out), the order the features are
    flattened in."""
    read = []
    for datasets in layers:
        if len(datasets) != 2 or datasets[0].ndim < 2:
            shapes = [dataset.shape for dataset in datasets]
            raise WeightsUnreadable(path, f"a layer holds {shapes}, not a kernel and a bias")
        kernel = np.asarray(datasets[0][()], np.float32)
        if matrices:
            kernel = kernel.reshape(-1, kernel.shape[-1])
        read.append((kernel, np.asarray(datasets[1][()], np.float32)))
    return tuple(read)


def _darknet(kernels: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[str, bytes]:
    """The trunk as a Darknet configuration and weights blob (see the module docstring)."""
    config = ["[net]", f"width={INPUT_SIDE}", f"height={INPUT_SIDE}", "channels=3", ""]
    blob = [_DARKNET_HEADER]
    layers = iter(kernels)
    for filters, convs in BLOCKS:
        for _ in range(convs):
            kernel, bias = next(layers)
            config += ["[convolutional]", f"filters={filters}", "size=3", "stride=1", "pad=1", "activation=relu", ""]
            blob += [bias.tobytes(), np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)).tobytes()]
        config += ["[maxpool]", "size=2", "stride=2", ""]
    return "\n".join(config), b"".join(blob)
