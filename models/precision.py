"""How the DeepFace age/gender networks compute: the engine and the number format.

- ``float32``: TensorFlow in float32, DeepFace's own arithmetic.
- ``bfloat16``: TensorFlow with bfloat16 weights and products. On a CPU with native bfloat16
  arithmetic (AVX512-BF16 or AMX, e.g. AMD Zen 4, Intel Sapphire Rapids) oneDNN runs VGG-Face's
  convolutions at about half the CPU time (`make bench`), keeping float32 sums inside each
  convolution; the weights are rounded to 8 significant bits, so the probabilities move
  slightly (tests/models/test_agegender.py, docs/models.md). Elsewhere TensorFlow would emulate it,
  slower than float32.
- ``opencv-float32``: float32 on OpenCV's DNN (``models.vgg_opencv``), whose Winograd 3x3
  convolutions beat TensorFlow's float32 on AVX2-only CPUs (0.32-0.36 against 0.61 CPU s per
  face, both capped at AVX2, one thread; docs/benchmark.md) and which needs no TensorFlow at
  all. The probabilities differ from float32's only by summation order (under 1e-5, tests/models/test_agegender.py).

``auto``, the default: bfloat16 where the CPU does it natively, float32 on other AVX-512 CPUs
(where TensorFlow's float32 was the faster, 0.20 against 0.22 s), opencv-float32 elsewhere.
This module never imports TensorFlow; it also checks TensorFlow's thread counts
($FACES_TF_THREADS, applied by ``models.tf_runtime``), so that their error needs no TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

from faces.errors import FacesError
from faces.settings import AGEGENDER_PRECISION_ENV, model_settings

PRECISION_ENV = AGEGENDER_PRECISION_ENV
FLOAT32 = "float32"
BFLOAT16 = "bfloat16"
OPENCV_FLOAT32 = "opencv-float32"
CHOICES = ("auto", FLOAT32, BFLOAT16, OPENCV_FLOAT32)
# /proc/cpuinfo flags of CPUs with bfloat16 dot products in hardware.
_NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
_AVX512_FLAG = "avx512f"


class PrecisionError(FacesError, ValueError):
    """FACES_AGEGENDER_PRECISION is not one of auto, float32, bfloat16, opencv-float32.

    Cause: a typo in the environment. Remedy: set one of the four, or unset it for auto.
    """


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (empty when /proc/cpuinfo cannot be read)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU's flags include bfloat16 arithmetic (False when they cannot be read)."""
    return bool(_NATIVE_BF16_FLAGS & cpu_flags(cpuinfo))


def choose_precision(setting: str | None = None, flags: frozenset[str] | None = None) -> str:
    """``setting`` (an edge's ModelSettings.precision; None: the environment's, read by
    faces.settings; empty: ``auto``) -> one of float32, bfloat16, opencv-float32; ``auto``
    decides by ``flags`` (default: this CPU's)."""
    raw = setting if setting is not None else model_settings(None).precision
    choice = raw.strip().lower() or "auto"
    if choice not in CHOICES:
        raise PrecisionError(f"{PRECISION_ENV}={raw!r}: expected one of {', '.join(CHOICES)}")
    if choice != "auto":
        return choice
    flags = cpu_flags() if flags is None else flags
    if _NATIVE_BF16_FLAGS & flags:
        return BFLOAT16
    return FLOAT32 if _AVX512_FLAG in flags else OPENCV_FLOAT32


class TensorFlowThreadsError(FacesError, ValueError):
    """FACES_TF_THREADS or FACES_TF_INTER_THREADS is not a positive integer.

    Cause: a typo in the environment. Remedy: set a whole number of threads, e.g. 1.
    """


def thread_count(name: str, setting: str) -> int | None:
    """The thread count variable ``name`` was set to (``setting``), None when unset."""
    raw = setting.strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise TensorFlowThreadsError(f"{name}={raw!r} is not a positive whole number of threads")
    return int(raw)
