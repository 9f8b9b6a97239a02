"""Which number format the age/gender networks compute in: float32 or bfloat16.

DeepFace computes in float32. On a CPU with native bfloat16 arithmetic (AVX512-BF16 or AMX,
e.g. AMD Zen 4, Intel Sapphire Rapids) oneDNN runs VGG-Face's convolutions in bfloat16 at
about half the CPU time (`make bench`), keeping float32 sums inside each convolution; the
weights are rounded to 8 significant bits, so the probabilities move slightly (measured in
tests/test_agegender.py and docs/models.md). ``auto``, the default, uses bfloat16 only where the
CPU does it natively: elsewhere TensorFlow would emulate it, slower than float32.
This module never imports TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

PRECISION_ENV = "FACES_AGEGENDER_PRECISION"
FLOAT32 = "float32"
BFLOAT16 = "bfloat16"
CHOICES = ("auto", FLOAT32, BFLOAT16)
# /proc/cpuinfo flags of CPUs with bfloat16 dot products in hardware.
_NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


class PrecisionError(ValueError):
    """FACES_AGEGENDER_PRECISION is not one of auto, float32, bfloat16.

    Cause: a typo in the environment. Remedy: set one of the three, or unset it for auto.
    """


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU's flags include bfloat16 arithmetic (False when they cannot be read)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(_NATIVE_BF16_FLAGS & set(line.partition(":")[2].split()))
    return False


def choose_precision(setting: str | None = None, native_bf16: bool | None = None) -> str:
    """``setting`` (default $FACES_AGEGENDER_PRECISION, else ``auto``) -> float32 or bfloat16."""
    raw = setting if setting is not None else os.environ.get(PRECISION_ENV, "")
    choice = raw.strip().lower() or "auto"
    if choice not in CHOICES:
        raise PrecisionError(f"{PRECISION_ENV}={raw!r}: expected one of {', '.join(CHOICES)}")
    if choice != "auto":
        return choice
    native = cpu_has_native_bf16() if native_bf16 is None else native_bf16
    return BFLOAT16 if native else FLOAT32
