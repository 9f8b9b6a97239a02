"""Random DeepFace age/gender weight files, for tests and benchmarks without the real ones.

The files have DeepFace's layout (Keras 2 ``save_weights`` of the same graph DeepFace builds,
see ``faces.models.vggface``), so DeepFace's own loaders and ``faces.models.agegender`` read
them like the real ones (tests/models/test_agegender.py checks both), ~540 MB each. Values are random
(He-scaled so activations neither vanish nor explode), so the predicted ages and genders
mean nothing; only shapes, speed and equivalences are real.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np

from faces.models.vgg_weights import AGE_CLASSES, GENDER_CLASSES, TRUNK_LAYERS
from faces.models.vggface import build_deepface_model
from faces.models.weights import AGE_FILE, GENDER_FILE


def write_synthetic_weights(weights_dir: Path, shared_trunk: bool, seed: int = 0) -> tuple[Path, Path]:
    """Write age_model_weights.h5 and gender_model_weights.h5 into ``weights_dir``.

    With ``shared_trunk`` the two files hold identical convolution trunks (as the real
    files are believed to); otherwise the trunks differ. The heads always differ. The
    same ``seed`` gives the same files. Returns (age path, gender path).
    """
    weights_dir = Path(weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    age_path, gender_path = weights_dir / AGE_FILE, weights_dir / GENDER_FILE
    # One random stream per part, so the trunk does not depend on the head's class count.
    _write(age_path, AGE_CLASSES, trunk_seed=(seed, 0), head_seed=(seed, 2))
    _write(gender_path, GENDER_CLASSES, trunk_seed=(seed, 0 if shared_trunk else 1), head_seed=(seed, 3))
    return age_path, gender_path


def _write(path: Path, classes: int, trunk_seed: tuple[int, int], head_seed: tuple[int, int]) -> None:
    model = build_deepface_model(classes, file_layout=True)  # DeepFace's own shapes in the file
    weighted = [layer for layer in model.layers if layer.weights]
    trunk_rng, head_rng = np.random.default_rng(trunk_seed), np.random.default_rng(head_seed)
    for index, layer in enumerate(weighted):
        rng = trunk_rng if index < TRUNK_LAYERS else head_rng
        kernel_shape, bias_shape = (tuple(w.shape) for w in layer.weights)
        fan_in = int(np.prod(kernel_shape[:-1]))
        is_class_layer = index == len(weighted) - 1
        # He scaling for ReLU layers; the class layer gets a smaller scale so the softmax
        # spreads over several classes instead of saturating on one.
        scale = np.sqrt((0.5 if is_class_layer else 2.0) / fan_in)
        kernel = rng.standard_normal(kernel_shape, dtype=np.float32) * np.float32(scale)
        bias = rng.standard_normal(bias_shape, dtype=np.float32) * np.float32(0.01)
        layer.set_weights([kernel, bias])
    temp = path.with_name(f".{path.name}.part")
    model.save_weights(str(temp), save_format="h5")
    temp.replace(path)
    del model
    gc.collect()
