"""This pipeline end to end: cold (a whole `faces run` process) and warm (a running stack).

Cold is what a user waits for: `python -m faces run FOLDER` in a fresh process, from launch to
exit, with the embedded Redis, four worker processes, TensorFlow's import, the model loads
and the shutdown all inside. Its logs (parent at INFO, one JSON log per worker) give the
timeline of where those seconds went.

Warm is the steady state: the same stack (``faces.ops.supervise.pool.WorkerPool`` against an embedded
Redis), already up and past one warm-up image, fed the whole batch at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.machine import process_cpu_s, redis_server_version
from faces import settings as defaults
from faces.ops.cli.options import analysis_worker_args
from faces.ops.jobs.run import JobOptions, JobSummary, start_pool, wait_for_results
from faces.ops.jobs.target import redis_target
from faces.ops.settings import AppSettings
from faces.ops.supervise.pool import WorkerPool
from faces.producer.submit import submit_file
from faces.schemas.result import stage_ms as result_stage_ms
from faces.streams import results

WORKER_BATCH = defaults.BATCH  # the workers' --batch as `faces run` passes it
RESULT_TIMEOUT_S = 900.0


def worker_args(app: AppSettings, visualize: bool, recognition: bool) -> dict[str, list[str]]:
    """The worker options `faces run` passes (its own function), so the bench's stacks run the
    same: pictures into app.output or none (`--no-visualize`), and recognition always stated, so
    that FACES_RECOGNITION in the bench's environment cannot change what is measured."""
    return analysis_worker_args(
        app, batch=WORKER_BATCH, visualize=visualize, detector=None, agegender=None, recognition=recognition
    )


def recognition_flag(recognition: bool) -> str:
    """The command-line flag that states the choice (it wins over FACES_RECOGNITION)."""
    return "--recognition" if recognition else "--no-recognition"


def cold_run(
    folder: Path, deepface_home: Path, workdir: Path, env: dict[str, str] | None = None, recognition: bool = False
) -> dict:
    """`faces run FOLDER` in a new process, timed from launch to exit, with its timeline.
    ``env`` adds settings for that process and its workers (e.g. the age/gender precision).
    ``recognition`` is passed as its flag (off: the same work as DeepFace's loop it is
    compared with; on: the user's default)."""
    state, storage = workdir / "state", workdir / "storage"
    command = [
        sys.executable,
        "-m",
        "faces",
        "run",
        str(folder),
        "--state-dir",
        str(state),
        "--storage",
        str(storage),
        "--output",
        str(workdir / "output"),
        "--verbose",
        recognition_flag(recognition),
    ]
    env = {**os.environ, **(env or {}), "DEEPFACE_HOME": str(deepface_home)}
    launched_wall, launched = time.time(), time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - launched
    if done.returncode not in (0, 3):
        raise RuntimeError(f"faces run failed ({done.returncode}): {done.stderr[-2000:]}")
    stored = [json.loads(p.read_text()) for p in sorted(storage.glob("*.json"))]
    faces_of = {r["image_id"]: len(r["faces"]) for r in stored}
    return {
        "seconds": seconds,
        "images": len(stored),
        "faces": sum(faces_of.values()),
        "recognition": recognition,
        "exit_code": done.returncode,
        "timeline": cold_timeline(done.stderr, state / "logs", launched_wall, seconds),
        "agegender_batches": stage_batches(state / "logs" / "agegender-0.log", 0.0, float("inf"), faces_of),
    }


def cold_timeline(parent_log: str, log_dir: Path, launched_wall: float, total_s: float) -> dict:
    """Seconds since launch of each milestone, read from the JSON log lines, and the phases
    they delimit: start-up until the last worker is ready, the compute after that, the stop."""
    marks: dict[str, Any] = {}  # seconds since launch, and each stage's load_s as logged
    lines = parent_log.splitlines()
    for path in sorted(log_dir.glob("*.log")):
        lines += path.read_text(errors="replace").splitlines()
    for record in _json_lines(lines):
        at = _seconds_since(record.get("timestamp"), launched_wall)
        event, stage = record.get("event"), record.get("stage")
        if event in ("embedded_redis.started", "workers.started", "workers.stopped"):
            marks.setdefault(event, at)
        elif event == "worker.ready":
            marks[f"{stage}.ready"] = at
            marks[f"{stage}.load_s"] = record.get("load_s")
        elif event == "entry.processed":
            marks.setdefault(f"{stage}.first_done", at)
            marks[f"{stage}.last_done"] = max(at, marks.get(f"{stage}.last_done", at))
    ready = max(v for k, v in marks.items() if k.endswith(".ready"))
    last_result = marks.get("sink.last_done", total_s)
    return {
        "marks": marks,
        "first_result_s": marks.get("sink.first_done"),
        "phases": {
            "spawn_s": marks.get("workers.started", 0.0),
            "until_all_ready_s": ready,
            "compute_after_ready_s": last_result - ready,
            "stop_s": total_s - last_result,
        },
    }


def stage_batches(log_path: Path, since_wall: float, until_wall: float, faces_of: dict[str, int]) -> list[dict]:
    """The batches a worker handled between two wall-clock times, from its JSON log: images,
    faces and seconds of each. The runtime logs one line per entry, each with the batch size
    and the batch's time shared out per entry, so equal consecutive lines are one batch."""
    batches: list[dict] = []
    left = 0
    for record in _json_lines(log_path.read_text(errors="replace").splitlines()):
        at = _seconds_since(record.get("timestamp"), 0.0)
        if record.get("event") != "entry.processed" or not since_wall <= at <= until_wall:
            continue
        if left == 0:
            left = record["batch"]
            batches.append({"images": left, "faces": 0, "seconds": left * record["duration_ms"] / 1000})
        batches[-1]["faces"] += faces_of.get(record.get("image_id", ""), 0)
        left -= 1
    return batches


def _json_lines(lines: Sequence[str]) -> Iterator[dict]:
    for line in lines:
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                yield json.loads(line)


def _seconds_since(stamp: str | None, launched_wall: float) -> float:
    """An ISO log or result timestamp as seconds after ``launched_wall`` (0.0: epoch seconds)."""
    if not stamp:
        return float("nan")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - launched_wall


@contextlib.contextmanager
def _deepface_home(path: Path) -> Iterator[None]:
    """Workers inherit this process's environment: point DeepFace at the bench weights."""
    before = os.environ.get("DEEPFACE_HOME")
    os.environ["DEEPFACE_HOME"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DEEPFACE_HOME", None)
        else:
            os.environ["DEEPFACE_HOME"] = before


def warm_run(photos: Sequence[Path], warmup: Path, deepface_home: Path, workdir: Path, repeat: int = 1) -> dict:
    """Start the stack, push ``warmup`` through it, then time ``photos`` as one batch.

    Returns the median over ``repeat`` batches of the wall seconds from the first submission
    to the last result, with per-image latencies and the stage times the results report.
    """
    app = AppSettings(
        redis_url=None, state_dir=workdir / "state", storage=workdir / "storage", output=workdir / "output"
    )
    # Recognition off: the DeepFace loop it is compared with recognises nobody.
    options = JobOptions(timeout_s=RESULT_TIMEOUT_S, worker_args=worker_args(app, visualize=True, recognition=False))
    with _deepface_home(deepface_home), redis_target(app) as (url, client, _server):
        pool = start_pool(url, app, options)
        try:
            started = time.monotonic()
            _feed(client, [warmup], pool, options, app)
            ready_s = time.monotonic() - started
            batches = [_feed(client, photos, pool, options, app) for _ in range(max(1, repeat))]
            # Let the workers write their last log lines before they are read.
            time.sleep(0.5)
            for batch in batches:
                batch["agegender_batches"] = stage_batches(
                    app.log_dir / "agegender-0.log",
                    batch.pop("since_wall"),
                    batch.pop("until_wall"),
                    batch.pop("faces_of"),
                )
            redis_version = redis_server_version(client)
        finally:
            pool.stop()
    median = sorted(batches, key=lambda b: b["seconds"])[len(batches) // 2]
    return {
        **median,
        "runs_s": [b["seconds"] for b in batches],
        "stack_ready_s": ready_s,
        "redis_version": redis_version,
    }


def _worker_pids(pool: WorkerPool) -> dict[str, int]:
    """Slot ("detect-0") -> pid of every worker the pool started."""
    return {w.slot: w.process.pid for w in pool.workers if w.process}


def _feed(client, photos: Sequence[Path], pool: WorkerPool, options: JobOptions, app: AppSettings) -> dict:
    """Submit ``photos`` and wait for every result; wall seconds, faces and stage times."""
    cursors = results.cursors_now(client)
    summary = JobSummary(submitted=len(photos))
    pids = _worker_pids(pool)
    cpu_before = {name: process_cpu_s(pid) for name, pid in pids.items()}
    since_wall, started = time.time(), time.monotonic()
    sent = [submit_file(client, path) for path in photos]
    wait_for_results(
        client, {s.job_id: s.path for s in sent}, cursors, summary, pool, options, lambda done, total: None, app
    )
    seconds = time.monotonic() - started
    # Each worker's CPU seconds during the batch: what the other stages took from the cores
    # the busiest one wanted, and whether the busiest one worked or waited.
    worker_cpu_s = {name: process_cpu_s(pid) - cpu_before[name] for name, pid in pids.items()}
    stored = [json.loads(results.stored_result(client, s.image_id) or "{}") for s in sent]
    latencies = [_seconds_since(r["processed_at"], 0.0) - _seconds_since(r["submitted_at"], 0.0) for r in stored if r]
    stage_ms = {}
    for stage in ("detect", "landmarks", "agegender"):
        stage_ms[stage] = sum(result_stage_ms(r.get("timings_ms", {}), stage) for r in stored)
    if summary.error or summary.dead:
        raise RuntimeError(f"warm run: {summary.error} error and {summary.dead} dead results: {summary.errors}")
    return {
        "seconds": seconds,
        "images": len(photos),
        "faces": summary.faces,
        "worker_cpu_s": worker_cpu_s,
        "since_wall": since_wall,
        "until_wall": time.time(),
        "faces_of": {r["image_id"]: len(r["faces"]) for r in stored if r},
        "latency_p50_s": statistics.median(latencies),
        "latency_max_s": max(latencies),
        "in_pipeline_stage_s": {k: v / 1000 for k, v in stage_ms.items()},
    }
