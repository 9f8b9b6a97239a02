"""Facts about the machine a benchmark ran on, and how busy others kept it meanwhile.

Ratios measured side by side on one machine only mean something if nothing else was
competing for its cores, so ``CpuWatch`` compares the CPU time the whole machine spent
(/proc/stat) with what this process and its children spent: the difference is load from
elsewhere (other jobs, other users) that slowed the run down.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from importlib import metadata

from faces.models.precision import BFLOAT16, FLOAT32, OPENCV_FLOAT32, PRECISION_ENV, choose_precision
from faces.ops.supervise.counts import available_cores


def machine_facts(redis_version: str | None = None) -> dict:
    """Cores, CPU model, memory, and the versions of everything that does the work."""
    import cv2
    import dlib
    import tensorflow as tf

    return {
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "cpu_model": _cpuinfo("model name"),
        "cpu_kind": cpu_kind(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "opencv": cv2.__version__,
        "dlib": dlib.__version__,
        "deepface": _version("deepface"),
        "redis_py": _version("redis"),
        "msgpack": _version("msgpack"),
        "redis_server": redis_version,
        # Thread settings in force for every process the bench starts (unset: library defaults).
        "env": {
            k: os.environ.get(k)
            for k in ("FACES_TF_THREADS", "FACES_TF_INTER_THREADS", "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")
        },
    }


def redis_server_version(client) -> str:
    """The version of the redis-server ``client`` talks to, e.g. "7.2.4".

    A Redis call outside ``faces.streams``, where the product keeps all of its own: the bench
    measures the product and is not part of it."""
    raw = client.info("server").get("redis_version", "?")
    return raw.decode() if isinstance(raw, bytes) else str(raw)


# The cores this process may run on: the same count `faces up --workers auto` sizes itself by.
usable_cores = available_cores


AVX512_BF16 = "AVX-512 with bfloat16"
AVX512_ONLY = "AVX-512 without bfloat16"
AVX2_ONLY = "AVX2 only"
# How the bench runs a pair "as on an AVX2-only CPU" on a newer one: oneDNN (TensorFlow's CPU
# kernels, the DeepFace loop's) and OpenCV's dispatcher told to use no instruction set past
# AVX2, and age/gender on OpenCV in float32, which is what `faces run` picks on such a CPU
# (models.precision). dlib, onnxruntime and numpy's BLAS (the heads' dense layers) are not capped.
# OpenCV's feature names are spelled with hyphens: an unknown name is only warned about.
AVX2_EMULATION = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX512-COMMON",
    PRECISION_ENV: OPENCV_FLOAT32,
}


def cpu_kind(flags: str | None = None) -> str:
    """Which vector units TensorFlow and onnxruntime get here: AVX512_BF16 when /proc/cpuinfo's
    flags list bfloat16 arithmetic (avx512_bf16 or amx_bf16: bfloat16 age/gender runs natively),
    AVX512_ONLY for avx512f without it, AVX2_ONLY when they list avx2, else "older than AVX2".
    ``flags``: a flags line to judge instead of this machine's."""
    words = frozenset((flags if flags is not None else _cpuinfo("flags") or "").split())
    # Judged by the rule `auto` uses (models.precision), so the two never disagree on a CPU.
    engine = choose_precision("auto", words)
    if engine == BFLOAT16:
        return AVX512_BF16
    if engine == FLOAT32:
        return AVX512_ONLY
    return AVX2_ONLY if "avx2" in words else "older than AVX2"


def process_memory_mb(pid: int) -> dict:
    """Resident memory of a live process now and at its peak (VmRSS, VmHWM), in MB; {} when gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return {}
    return {
        key: int(fields[name].split()[0]) / 1024
        for key, name in (("rss_mb", "VmRSS"), ("peak_mb", "VmHWM"))
        if name in fields
    }


def _cpuinfo(key: str) -> str | None:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


class CpuWatch:
    """CPU seconds used by the whole machine vs. by this process tree, since creation.

    Children count once they have been waited for, so read it after they have exited.
    """

    def __init__(self) -> None:
        self._machine, self._own, self._wall = _machine_busy_s(), _own_cpu_s(), time.monotonic()

    def report(self) -> dict:
        machine, own = _machine_busy_s() - self._machine, _own_cpu_s() - self._own
        wall = time.monotonic() - self._wall
        return {
            "wall_s": round(wall, 1),
            "machine_cpu_s": round(machine, 1),
            "bench_cpu_s": round(own, 1),
            "other_cpu_s": round(max(0.0, machine - own), 1),
            "other_load_cores": round(max(0.0, machine - own) / wall, 2) if wall else 0.0,
        }


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far, from /proc/PID/stat;
    0.0 when it is gone. Lets the bench see each worker's share while they all run."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # The command name (field 2) may hold spaces; fields after its ")" are fixed.
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """Non-idle CPU seconds of all cores since boot (user+nice+system+irq+softirq+steal)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
