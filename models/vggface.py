"""DeepFace's VGG-Face age and gender networks as Keras graphs, and their weight files.

DeepFace's Age and Gender models (deepface.models.demography.tf) are VGGFace.base_model()
with its identity classifier swapped, after fc7's dropout, for a 1x1 convolution to 101 ages
or 2 genders, then a softmax. The graphs here are that network layer for layer (the tests
check the outputs equal DeepFace's own models exactly). They are rebuilt rather than taken
from VGGFace.base_model() because DeepFace's layers start from random Glorot values that cost
over a gigabyte of temporary memory per model, only to be overwritten by the weight file;
these start from zeros. ``build_shared_model`` runs the convolution trunk once for both heads.

DeepFace writes fc6, fc7 and the class layer as convolutions (7x7 over the 7x7 feature map,
then 1x1 over a 1x1 map). Each is the same sum as a matrix product of the flattened features
with the kernel reshaped to (inputs, outputs), and TensorFlow runs that as one matrix product,
where as a convolution oneDNN first reorders the 411 MB fc6 kernel on every call (0.2-0.3 CPU s
per call in bfloat16, about 0.5 in float32, against 0.06-0.12 as a matrix product, measured
here at 1 to 40 faces). So the graphs that run use Dense layers there (``file_layout=False``); the
weight files keep DeepFace's convolution shapes, which ``file_layout=True`` builds (for
writing synthetic files) and ``_fill`` reshapes on load.

The weight files' layout and reader are in ``models.vgg_weights`` (no TensorFlow there).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from faces.models import tf_runtime  # first: it sets Keras 2 up before TensorFlow loads
from faces.models.precision import FLOAT32
from faces.models.vgg_weights import AGE_CLASSES, BLOCKS, GENDER_CLASSES, INPUT_SIDE, TRUNK_LAYERS, weight_file
from faces.models.weights import WeightsUnreadable

# isort: split
# TensorFlow only after tf_runtime: import order matters here.
import tensorflow as tf  # noqa: E402
from tensorflow.keras.layers import (  # noqa: E402
    Activation,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Input,
    MaxPooling2D,
)
from tensorflow.keras.models import Model  # noqa: E402

tf_runtime.require_keras2()

_SLICE_BYTES = 64 << 20
_ZEROS = {"kernel_initializer": "zeros", "bias_initializer": "zeros"}


def build_deepface_model(classes: int, dtype: str = FLOAT32, file_layout: bool = False) -> Model:
    """DeepFace's demography graph: 224x224x3 BGR in 0..1 -> ``classes`` softmax
    probabilities. Weights are zeros until loaded. ``dtype`` is the format of the weights
    and the arithmetic (``models.precision``); the input and the probabilities are float32.
    ``file_layout`` builds the head as DeepFace's convolutions (see the module docstring)."""
    inputs = Input(shape=(INPUT_SIDE, INPUT_SIDE, 3))
    return Model(inputs=inputs, outputs=_head(_trunk(inputs, dtype), classes, "head", dtype, file_layout))


def build_shared_model(dtype: str = FLOAT32) -> Model:
    """One trunk, two heads: 224x224x3 in -> [101 age probabilities, 2 gender probabilities]."""
    inputs = Input(shape=(INPUT_SIDE, INPUT_SIDE, 3))
    features = _trunk(inputs, dtype)
    return Model(
        inputs=inputs,
        outputs=[_head(features, AGE_CLASSES, "age", dtype), _head(features, GENDER_CLASSES, "gender", dtype)],
    )


def load_deepface_model(classes: int, path: Path, dtype: str = FLOAT32) -> Model:
    """``build_deepface_model`` with the weights of ``path``."""
    model = build_deepface_model(classes, dtype)
    _fill(_weighted(model), path, 0)
    return model


def load_shared_model(age_path: Path, gender_path: Path, dtype: str = FLOAT32) -> Model:
    """``build_shared_model`` filled from two files with equal trunks: the trunk and the
    age head from ``age_path``, the gender head from ``gender_path``."""
    model = build_shared_model(dtype)
    layers = _weighted(model)
    trunk = [layer for layer in layers if layer.name.startswith("trunk_")]
    age = [layer for layer in layers if layer.name.startswith("age_")]
    gender = [layer for layer in layers if layer.name.startswith("gender_")]
    _fill(trunk + age, age_path, 0)
    _fill(gender, gender_path, TRUNK_LAYERS)
    return model


def _trunk(inputs, dtype: str):
    # A layer whose dtype is bfloat16 keeps its weights in bfloat16 and casts its input to
    # it, so one cast of the photo batch is the only conversion per call.
    x = inputs
    index = 0
    for filters, convs in BLOCKS:
        for _ in range(convs):
            index += 1
            # padding="same" equals DeepFace's ZeroPadding2D((1, 1)) + valid 3x3 conv, in one
            # layer: identical outputs, ~5 % less CPU per forward pass (make bench).
            x = Conv2D(
                filters, (3, 3), activation="relu", padding="same", name=f"trunk_conv{index}", dtype=dtype, **_ZEROS
            )(x)
        x = MaxPooling2D((2, 2), strides=(2, 2), dtype=dtype)(x)
    return x


def _head(features, classes: int, prefix: str, dtype: str, file_layout: bool = False):
    if file_layout:
        x = Conv2D(4096, (7, 7), activation="relu", name=f"{prefix}_fc6", dtype=dtype, **_ZEROS)(features)
        x = Dropout(0.5, dtype=dtype)(x)
        x = Conv2D(4096, (1, 1), activation="relu", name=f"{prefix}_fc7", dtype=dtype, **_ZEROS)(x)
        x = Dropout(0.5, dtype=dtype)(x)
        x = Conv2D(classes, (1, 1), name=f"{prefix}_predictions", dtype=dtype, **_ZEROS)(x)
        x = Flatten(name=f"{prefix}_flatten", dtype=dtype)(x)
    else:
        # Flattening the 7x7x512 map in (row, column, channel) order matches the kernel's
        # (7, 7, 512, 4096) order reshaped to (25088, 4096).
        x = Flatten(name=f"{prefix}_features", dtype=dtype)(features)
        x = Dense(4096, activation="relu", name=f"{prefix}_fc6", dtype=dtype, **_ZEROS)(x)
        x = Dense(4096, activation="relu", name=f"{prefix}_fc7", dtype=dtype, **_ZEROS)(x)
        x = Dense(classes, name=f"{prefix}_predictions", dtype=dtype, **_ZEROS)(x)
    # The softmax always runs in float32: bfloat16's 8 bits would round the probabilities.
    return Activation("softmax", name=f"{prefix}_softmax", dtype=FLOAT32)(x)


def _weighted(model: Model) -> list:
    return [layer for layer in model.layers if layer.weights]


def _fill(layers: list, path: Path, first: int) -> None:
    """Set ``layers`` from the file's weighted layers starting at ``first``, in order."""
    with weight_file(path) as file_layers:
        for layer, datasets in zip(layers, file_layers[first:]):
            for variable, dataset in zip(layer.weights, datasets):
                if not _fits(tuple(variable.shape), dataset.shape):
                    expected = tuple(variable.shape)
                    detail = f"layer {layer.name} is {dataset.shape} in the file, DeepFace's is {expected}"
                    raise WeightsUnreadable(path, detail)
                _assign(variable, dataset)


def _fits(variable_shape: tuple, file_shape: tuple) -> bool:
    """The same shape, or a Dense kernel of a convolution kernel (kh, kw, in, out)."""
    if variable_shape == file_shape:
        return True
    return (
        len(variable_shape) == 2
        and len(file_shape) == 4
        and variable_shape[1] == file_shape[3]
        and variable_shape[0] == int(np.prod(file_shape[:3]))
    )


def _assign(variable, dataset: h5py.Dataset) -> None:
    """Copy a dataset into a variable in slices of its first axis of about 64 MB: fc6's
    411 MB kernel copied whole would need that much again in temporary buffers, and slices
    of the first axis are contiguous in the file, so HDF5 reads them in one pass. The
    file's float32 values are rounded to the variable's dtype (bfloat16 or float32), and a
    convolution kernel is reshaped into a Dense one (each file slice is a block of rows)."""

    def value(part: np.ndarray):
        return tf.cast(part.reshape(-1, *variable.shape[1:]), variable.dtype)

    if dataset.nbytes <= _SLICE_BYTES:
        variable.assign(value(dataset[()]))
        return
    rows = variable.shape[0] // dataset.shape[0]  # variable rows per slice of the file's first axis
    step = max(1, _SLICE_BYTES * dataset.shape[0] // dataset.nbytes)
    for start in range(0, dataset.shape[0], step):
        variable[start * rows : (start + step) * rows].assign(value(dataset[start : start + step]))
