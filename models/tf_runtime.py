"""TensorFlow set-up shared by the modules that need it: age/gender here, and
``bench.synthetic`` (outside the product).

Importing this module imports TensorFlow, so only ``models.agegender`` and
``bench.synthetic`` do; the detect and landmark workers never pay for it.
"""

from __future__ import annotations

import os

from faces.errors import FacesError
from faces.models.precision import thread_count
from faces.settings import TF_INTER_THREADS_ENV, TF_THREADS_ENV, ModelSettings, model_settings

# The two writes below are TensorFlow's own variables, set for it before it loads (not settings
# of ours, which are read at the edge: faces.settings.ModelSettings).
# DeepFace's Keras code targets Keras 2 (the tf-keras package); TensorFlow >= 2.16 serves
# Keras 3 as tf.keras unless this is set before TensorFlow is first imported.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) is not ours to show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402  (the variables above must be set first)

THREADS_ENV = TF_THREADS_ENV
INTER_THREADS_ENV = TF_INTER_THREADS_ENV


class WrongKerasVersion(FacesError, RuntimeError):
    """tf.keras is Keras 3, but DeepFace's models and weight files need Keras 2 (tf-keras).

    Cause: some code used tf.keras in this process before TF_USE_LEGACY_KERAS=1 was set.
    Remedy: set TF_USE_LEGACY_KERAS=1 in the environment, or load the models first.
    """


def require_keras2() -> None:
    """Raise ``WrongKerasVersion`` unless tf.keras resolves to the tf-keras package."""
    name = tf.keras.layers.Layer.__module__
    if not name.startswith("tf_keras"):
        raise WrongKerasVersion(f"tf.keras is {name.split('.')[0]}, not tf_keras (Keras 2)")


def configure_threads(
    intra: int | None = None, inter: int | None = None, models: ModelSettings | None = None
) -> tuple[int, int]:
    """Limit TensorFlow's thread pools; returns the (intra, inter) counts in force (0 = TF's default).

    Defaults come from ``models`` (None: the environment's, read by faces.settings):
    $FACES_TF_THREADS (intra-op: threads inside one convolution) and
    $FACES_TF_INTER_THREADS (inter-op: independent ops at once). Several workers share a
    few cores, and TensorFlow otherwise starts a pool as large as the machine in each. When
    only the intra count is given, inter-op is set to 1: the VGG graph is one chain of ops.
    TensorFlow accepts this only before it first runs an op; later calls keep the pools.
    """
    given = model_settings(models)
    intra = intra if intra is not None else thread_count(THREADS_ENV, given.tf_threads)
    inter = inter if inter is not None else thread_count(INTER_THREADS_ENV, given.tf_inter_threads)
    if intra is not None and inter is None:
        inter = 1
    try:
        if intra is not None:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter is not None:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        # The runtime is already initialised (a model was built earlier in this process).
        pass
    return (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )
