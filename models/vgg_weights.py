"""DeepFace's VGG-Face age and gender weight files: their layout, read without TensorFlow.

DeepFace's Age and Gender models are VGG-16's convolution trunk (five blocks of 3x3
convolutions, each block ending in a 2x2 max-pool), then fc6 (a 7x7 convolution to 4096),
fc7 (1x1 to 4096) and a class layer (1x1 to 101 ages or 2 genders), then a softmax.

A weight file is a Keras 2 ``save_weights`` HDF5: the layers that have weights, in graph
order, each with a kernel and a bias. For these networks that is 13 trunk convolutions, then
fc6, fc7, and the class layer. Layer names inside the file are whatever Keras generated and
play no part in loading, as in Keras itself. Both engines read the files through
``weight_file``: TensorFlow's (``models.vggface``) and OpenCV's (``models.vgg_opencv``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from faces.models.weights import WeightsUnreadable

AGE_CLASSES = 101
GENDER_CLASSES = 2
INPUT_SIDE = 224  # the networks take 224x224 BGR crops
# VGG-16's five blocks: (filters, 3x3 convolutions) each, then a 2x2 max-pool.
BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
TRUNK_LAYERS = sum(convs for _, convs in BLOCKS)  # 13 weighted layers before fc6
WEIGHTED_LAYERS = TRUNK_LAYERS + 3  # + fc6, fc7, class layer
# fc6's inputs: the last block's map (each block's max-pool halves the side) flattened.
TRUNK_FEATURES = (INPUT_SIDE // 2 ** len(BLOCKS)) ** 2 * BLOCKS[-1][0]


def trunks_equal(age_path: Path, gender_path: Path) -> bool:
    """True when both files hold the same convolution trunk (all layers before fc6)."""
    with weight_file(age_path) as age, weight_file(gender_path) as gender:
        for age_layer, gender_layer in zip(age[:TRUNK_LAYERS], gender[:TRUNK_LAYERS]):
            for a, g in zip(age_layer, gender_layer):
                if a.shape != g.shape or not np.array_equal(a[()], g[()]):
                    return False
    return True


@contextmanager
def weight_file(path: Path) -> Iterator[list[list[h5py.Dataset]]]:
    """Open a weight file; yields [kernel, bias] datasets per weighted layer, in graph order.

    Datasets are read only when sliced, so callers can copy one layer (or part of one) at a
    time. Raises ``WeightsUnreadable`` for anything that is not such a file.
    """
    try:
        with h5py.File(path, "r") as file:
            # Files saved from a whole model keep the layers one group down.
            group = file if "layer_names" in file.attrs else file["model_weights"]
            names = [_text(n) for n in group.attrs["layer_names"]]
            weighted = [n for n in names if len(group[n].attrs.get("weight_names", ())) > 0]
            if len(weighted) != WEIGHTED_LAYERS:
                raise WeightsUnreadable(path, f"{len(weighted)} weighted layers, expected {WEIGHTED_LAYERS}")
            yield [[group[n][_text(w)] for w in group[n].attrs["weight_names"]] for n in weighted]
    except (OSError, KeyError) as err:
        raise WeightsUnreadable(path, str(err)) from err


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)
