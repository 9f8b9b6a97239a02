"""How cost grows with the work: N small images queued, then consumed, for each N.

For each size a fresh stack (embedded Redis) first gets N images submitted with no worker
running: that is "queued", submitted and waiting, and Redis INFO's used_memory then, minus
the empty server's and minus the images' own bytes, is what the queue costs beyond the
images. Then the workers start and consume them all: throughput after the first tenth of the
results, the workers' resident memory at the end and at its peak, and Redis's memory once
everything is done (it keeps each result, and the images for replay, until their retention).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from bench.steady import rate_after, running_stack, submit_all, wait_results
from bench.workload import small_copies
from faces.streams import results


def _used_memory(client) -> dict:
    info = client.info("memory")
    return {"used_b": int(info["used_memory"]), "rss_b": int(info["used_memory_rss"]),
            "peak_b": int(info["used_memory_peak"])}


def grow(small: bytes, sizes: Sequence[int], workdir: Path, env: dict[str, str]) -> list[dict]:
    """One figure dict per size in ``sizes`` (see the module docstring)."""
    return [_one_size(small, n, workdir / f"growth-{n}", env) for n in sizes]


def _one_size(small: bytes, n: int, workdir: Path, env: dict[str, str]) -> dict:
    paths = small_copies(small, n, workdir / "in")
    image_bytes = sum(p.stat().st_size for p in paths)
    with running_stack(workdir, env, start_workers=False) as (idle, start):
        empty = _used_memory(idle.client)
        cursors = results.cursors_now(idle.client)
        began = time.monotonic()
        jobs = submit_all(idle, paths)
        submit_s = time.monotonic() - began
        queued = _used_memory(idle.client)
        stack = start()
        ready_s = stack.wait_ready()
        arrived = wait_results(stack, jobs, cursors)
        memory = stack.memory_mb()
        done = _used_memory(stack.client)
    bad = sum(status != "ok" for _t, status in arrived)
    if bad:
        raise RuntimeError(f"growth {n}: {bad} results are not ok")
    queue_b = queued["used_b"] - empty["used_b"]
    workers = {k: v for k, v in memory.items() if k != "redis-server"}
    return {"queued": n, "image_bytes": image_bytes, "submit_s": submit_s, "ready_s": ready_s,
            "redis_empty_b": empty["used_b"], "redis_queued_b": queued["used_b"], "redis_done_b": done["used_b"],
            "redis_peak_b": done["peak_b"], "redis_rss_b": done["rss_b"],
            "queue_b": queue_b, "queue_beyond_images_b_per_image": (queue_b - image_bytes) / n,
            "done_b_per_image": (done["used_b"] - empty["used_b"]) / n,
            "workers_rss_mb": sum(m.get("rss_mb", 0.0) for m in workers.values()),
            "workers_peak_mb": sum(m.get("peak_mb", 0.0) for m in workers.values()),
            "memory_mb": memory,
            **rate_after([t for t, _ in arrived], n // 10)}
