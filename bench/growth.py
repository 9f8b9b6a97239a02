"""How cost grows with the work: N small images queued, then consumed, for each N.

For each size a fresh stack (embedded Redis) first gets N images submitted with no worker
running: that is "queued", submitted and waiting, and Redis INFO's used_memory then, minus
the empty server's and minus the images' own bytes, is what the queue costs beyond the
images. Then the workers start. Each of the first ``windows`` x ``window`` results is
replaced by a new image at once, so the queue keeps its N while the rate is measured: images/s
in each window of ``window`` results (the first without its first tenth), and their median;
the same number of results and the same submitting work in this process for every N. Then the
workers consume the rest: their resident memory at the end and at its peak, and Redis's memory
once everything is done (it keeps each result, and the images for replay, until their
retention). Recognition is off: the growth targets are issue 16's, measured before the embed
stage existed, and with it on the windows would take several times as long.

Why a window at constant depth: when every size was simply drained, 100 images took 1.5 s, too
short to measure a rate to 10 %, and the first tenth skipped was not enough for the pipeline
to fill (detect ran ahead of the later stages, which flattered the small size: 59 against
48.5 images/s at 10,000 in the 2026-11-28 04:19 run). Topping up only the small size made the
opposite error: it alone paid for submitting during the measurement (50.9 against 56.5). And
one window per size was not enough: three single windows of 900 results at 1,000 queued gave
49.6, 52.9 and 55.0 images/s on this VM, a spread as wide as the target's 10 %.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from bench.steady import rate_after, running_stack, submit_all, wait_results
from bench.workload import small_copies
from faces.streams import results


def _used_memory(client) -> dict:
    info = client.info("memory")
    return {
        "used_b": int(info["used_memory"]),
        "rss_b": int(info["used_memory_rss"]),
        "peak_b": int(info["used_memory_peak"]),
    }


WINDOW = 1000  # results per measured window, each replaced at once (the queue keeps its depth)
WINDOWS = 3  # windows per size; their median is the size's rate


def grow(
    small: bytes, sizes: Sequence[int], workdir: Path, env: dict[str, str], window: int = WINDOW, windows: int = WINDOWS
) -> list[dict]:
    """One figure dict per size in ``sizes`` (see the module docstring)."""
    return [_one_size(small, n, workdir / f"growth-{n}", env, window, windows) for n in sizes]


def _window_rates(times: list[float], window: int, windows: int) -> dict:
    """Images/s in each consecutive window of results (the first after its warm-up tenth) and
    their median, from the results' arrival times."""
    times = sorted(times)
    parts = [rate_after(times[k * window : (k + 1) * window], window // 10 if k == 0 else 0) for k in range(windows)]
    return {
        "window": window,
        "window_rates": [p["images_per_s"] for p in parts],
        "images_per_s": statistics.median(p["images_per_s"] for p in parts),
        "counted_images": sum(p["counted_images"] for p in parts),
        "seconds": sum(p["seconds"] for p in parts),
    }


def _one_size(small: bytes, n: int, workdir: Path, env: dict[str, str], window: int, windows: int) -> dict:
    everything = small_copies(small, n + window * windows, workdir / "in")
    paths, top_up = everything[:n], everything[n:]
    image_bytes = sum(p.stat().st_size for p in paths)
    with running_stack(workdir, env, start_workers=False, recognition=False) as (idle, start):
        empty = _used_memory(idle.client)
        cursors = results.cursors_now(idle.client)
        began = time.monotonic()
        jobs = submit_all(idle, paths)
        submit_s = time.monotonic() - began
        queued = _used_memory(idle.client)
        stack = start()
        ready_s = stack.wait_ready()
        arrived = wait_results(stack, jobs, cursors, top_up=iter(top_up))
        memory = stack.memory_mb()
        done = _used_memory(stack.client)
    bad = sum(status != "ok" for _t, status in arrived)
    if bad:
        raise RuntimeError(f"growth {n}: {bad} results are not ok")
    queue_b = queued["used_b"] - empty["used_b"]
    workers = {k: v for k, v in memory.items() if k != "redis-server"}
    return {
        "queued": n,
        "results": len(arrived),
        "image_bytes": image_bytes,
        "submit_s": submit_s,
        "ready_s": ready_s,
        "redis_empty_b": empty["used_b"],
        "redis_queued_b": queued["used_b"],
        "redis_done_b": done["used_b"],
        "redis_peak_b": done["peak_b"],
        "redis_rss_b": done["rss_b"],
        "queue_b": queue_b,
        "queue_beyond_images_b_per_image": (queue_b - image_bytes) / n,
        "done_b_per_image": (done["used_b"] - empty["used_b"]) / len(arrived),
        "workers_rss_mb": sum(m.get("rss_mb", 0.0) for m in workers.values()),
        "workers_peak_mb": sum(m.get("peak_mb", 0.0) for m in workers.values()),
        "memory_mb": memory,
        # The first windows x window results arrived while each was replaced: the queue held n.
        **_window_rates([t for t, _ in arrived], window, windows),
    }
