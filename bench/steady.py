"""The pipeline in its steady state: a running stack (embedded Redis, one `faces worker` process
per stage slot, as `faces up` runs them) fed many images, timed from its results.

Throughput counts from the WARMUP-th result to the last (the results stream's entry ids are
the sink's Redis clock, in ms), so model loading and the first batches' ramp-up stay out.
Latency is each result's processed_at minus its submitted_at. CPU seconds per image are read
from /proc for every process (each worker, redis-server, and this process that submits).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bench.machine import process_cpu_s, process_memory_mb
from bench.pipeline import _seconds_since, worker_args
from faces.ops.jobs.run import JobOptions, start_pool
from faces.ops.jobs.target import redis_target
from faces.ops.settings import AppSettings
from faces.producer.submit import submit_file
from faces.streams import results
from faces.streams.names import STAGE_ORDER

WARMUP_RESULTS = 100
RESULT_TIMEOUT_S = 1800.0


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    """Workers inherit this process's environment: the backend and weights they should load."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Stack:
    """A running stack: its client, worker pool and the pid of every process that works."""

    def __init__(self, client, pool, app: AppSettings) -> None:
        self.client, self.pool, self.app = client, pool, app
        self.redis_pid = int(client.info("server")["process_id"])

    def pids(self) -> dict[str, int]:
        found = {w.slot: w.process.pid for w in self.pool.workers if w.process}
        return {**found, "redis-server": self.redis_pid, "bench (submits)": os.getpid()}

    def cpu_now(self) -> dict[str, float]:
        own = time.process_time()
        return {name: own if pid == os.getpid() else process_cpu_s(pid) for name, pid in self.pids().items()}

    def memory_mb(self) -> dict[str, dict]:
        return {name: process_memory_mb(pid) for name, pid in self.pids().items() if pid != os.getpid()}

    def wait_ready(self, timeout_s: float = 300.0) -> float:
        started = time.monotonic()
        while self.pool.waiting_for():
            self.pool.supervise()
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"workers not ready after {timeout_s:.0f} s: {self.pool.waiting_for()}")
            time.sleep(0.2)
        return time.monotonic() - started


@contextlib.contextmanager
def running_stack(
    workdir: Path,
    env: dict[str, str],
    counts: dict[str, int] | None = None,
    start_workers: bool = True,
    *,
    recognition: bool,
) -> Iterator[tuple[Stack, Callable[[], Stack]]]:
    """An embedded Redis and (unless not ``start_workers``: call the second value later) the
    worker pool `faces up` would start, with ``counts`` workers per stage (default one each)
    and ``recognition`` on or off (always passed to the embed worker: see worker_args)."""
    app = AppSettings(
        redis_url=None, state_dir=workdir / "state", storage=workdir / "storage", output=workdir / "output"
    )
    # No pictures: the plain program it is compared with draws none (issue 27 measured the same
    # way, `faces up --no-visualize`); drawing costs the sink a decode, a JPEG encode and an fsync.
    options = JobOptions(
        worker_args=worker_args(app, visualize=False, recognition=recognition),
        counts={**{s: 1 for s in STAGE_ORDER}, **(counts or {})},
    )
    with _env(env), redis_target(app) as (url, client, _server):
        holder: dict = {}

        def start() -> Stack:
            holder["stack"] = Stack(client, start_pool(url, app, options), app)
            return holder["stack"]

        stack = start() if start_workers else Stack(client, _NoPool(), app)
        try:
            yield stack, start
        finally:
            if "stack" in holder:
                holder["stack"].pool.stop()


class _NoPool:
    workers: list = []

    def waiting_for(self) -> list:
        return []

    def supervise(self) -> None:
        pass


def submit_all(stack: Stack, paths: Sequence[Path]) -> dict[str, str]:
    """Submit every path, without backpressure (the queue is the point): job id -> image id."""
    return {s.job_id: s.image_id for s in (submit_file(stack.client, p) for p in paths)}


def wait_results(
    stack: Stack, jobs: dict[str, str], cursors: dict[str, str], pool=None, top_up: Iterator[Path] | None = None
) -> list[tuple[float, str]]:
    """(Redis time in s, status) of each job's result in arrival order, once all have one.
    With ``top_up``, each result is replaced at once by the next of those images, so the queue
    keeps its depth until they run out."""
    waiting, arrived = set(jobs), []
    deadline = time.monotonic() + RESULT_TIMEOUT_S
    while waiting:
        for note in results.follow(stack.client, cursors, block_ms=500):
            if note.job_id in waiting:
                waiting.discard(note.job_id)
                arrived.append((int(note.stream_id.split("-")[0]) / 1000, note.status))
                following = next(top_up, None) if top_up is not None else None
                if following is not None:
                    waiting.add(submit_file(stack.client, following).job_id)
        (pool or stack.pool).supervise()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{len(waiting)} images without a result after {RESULT_TIMEOUT_S:.0f} s ({len(arrived)} had one)"
            )
    return arrived


def rate_after(times: Sequence[float], warmup: int) -> dict:
    """Images/s from the ``warmup``-th result to the last (at most a tenth of them skipped)."""
    times = sorted(times)
    skip = min(warmup, len(times) // 10)
    span = times[-1] - times[skip] if len(times) > skip + 1 else float("nan")
    return {
        "counted_from": skip + 1,
        "counted_images": len(times) - 1 - skip,
        "seconds": span,
        "images_per_s": (len(times) - 1 - skip) / span if span else float("nan"),
    }


def feed(stack: Stack, paths: Sequence[Path], warmup: int = WARMUP_RESULTS, latencies: bool = True) -> dict:
    """Submit ``paths`` to the warm stack at once and wait for every result: throughput after
    the warm-up, latency p50/p99, and CPU seconds per image of every process."""
    cursors = results.cursors_now(stack.client)
    cpu_before, started = stack.cpu_now(), time.monotonic()
    jobs = submit_all(stack, paths)
    submit_s = time.monotonic() - started
    arrived = wait_results(stack, jobs, cursors)
    wall = time.monotonic() - started
    cpu = {name: value - cpu_before.get(name, 0.0) for name, value in stack.cpu_now().items()}
    bad = sum(status != "ok" for _t, status in arrived)
    if bad:
        raise RuntimeError(f"{bad} of {len(arrived)} results are not ok: see {stack.app.log_dir}")
    n = len(paths)
    out = {
        "images": n,
        "submit_s": submit_s,
        "wall_s": wall,
        **rate_after([t for t, _ in arrived], warmup),
        "cpu_s_per_image": {k: v / n for k, v in cpu.items()},
        "cpu_s_per_image_total": sum(cpu.values()) / n,
        "cpu_share_of_wall": {k: v / wall for k, v in cpu.items()},
    }
    if latencies:
        import json

        stored = [json.loads(results.stored_result(stack.client, image_id) or "{}") for image_id in jobs.values()]
        seconds = sorted(
            _seconds_since(r["processed_at"], 0.0) - _seconds_since(r["submitted_at"], 0.0) for r in stored if r
        )
        out["faces"] = sum(len(r.get("faces", [])) for r in stored)
        # Faces the embed stage named or clustered: 0 with recognition off, all described ones with it on.
        out["recognised_faces"] = sum(
            1 for r in stored for face in r.get("faces", []) if face.get("person") or face.get("cluster")
        )
        out["latency_p50_s"] = statistics.median(seconds)
        out["latency_p99_s"] = seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))]
    return out


def steady_state(
    paths: Sequence[Path],
    warm: Sequence[Path],
    workdir: Path,
    env: dict[str, str],
    counts: dict[str, int] | None = None,
    latencies: bool = True,
    *,
    recognition: bool,
) -> dict:
    """Start a stack, push ``warm`` through it (models warm, every worker past its first
    batch), then ``feed`` it ``paths``; with the stack's start-up seconds and worker counts."""
    with running_stack(workdir, env, counts, recognition=recognition) as (stack, _start):
        ready_s = stack.wait_ready()
        feed(stack, warm, warmup=0, latencies=False)
        figures = feed(stack, paths, latencies=latencies)
        figures["memory_mb"] = stack.memory_mb()
    return {
        **figures,
        "recognition": recognition,
        "ready_s": ready_s,
        "counts": {s: len(stack.pool.by_stage(s)) for s in STAGE_ORDER},
    }
