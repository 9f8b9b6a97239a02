"""Issue 13's load run of the HTTP API (`make load`): 500 uploads from 32 concurrent clients with
?wait, against real workers; then 20 MB uploads, to see the API process's memory.

Proves every upload is answered and every image gets exactly one result (none lost, none twice),
and measures requests/s, the latency the API adds over the pipeline's own (client-observed
minus the result's submitted_at -> processed_at) and the API's RSS. The figures go to
bench-results/http-load.json and are printed."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from faces.ops.supervise.pool import WorkerPool
from faces.streams import names
from faces.streams.connection import connect
from tests.api_server import start_api, start_redis
from tests.images import DATA
from tests.pipeline import REPO
from tests.waiting import wait_until

UPLOADS = 500
CLIENTS = 32
BIG_UPLOADS = 32
BIG_BYTES = 20 << 20
WAIT_S = 60
REPORT = REPO / "bench-results" / "http-load.json"

pytestmark = pytest.mark.slow


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The peak resident memory of one process, sampled every 20 ms while in use."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _upload(base: str, data: bytes, name: str) -> dict:
    """One client's upload with ?wait (then polling on a 202): status, client latency, result."""
    with httpx.Client(base_url=base, timeout=WAIT_S + 60) as http:
        started = time.perf_counter()
        answer = http.post(
            "/v1/images",
            params={"wait": WAIT_S, "filename": name},
            content=data,
            headers={"Content-Type": "image/jpeg"},
        )
        seconds = time.perf_counter() - started
        first = answer.status_code
        if first == 202:
            url = answer.json()["status_url"]
            answer = wait_until(
                lambda: (r := http.get(url)).status_code == 200 and r,
                timeout_s=300,
                interval_s=0.2,
                what=f"the result of {name}",
            )
        assert answer.status_code == 200, answer.text
        return {"first_status": first, "client_s": seconds, "result": answer.json()}


def _run(base: str, payloads: list[tuple[bytes, str]]) -> tuple[list[dict], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        done = list(pool.map(lambda p: _upload(base, *p), payloads))
    return done, time.perf_counter() - started


def test_500_uploads_from_32_clients_each_get_exactly_one_result(tmp_path):
    """Every upload is answered, every image has exactly one announced result with the job the
    API answered, nothing is lost; figures written to bench-results/http-load.json."""
    server = start_redis(tmp_path)
    pool = WorkerPool(
        server.url,
        tmp_path / "logs",
        grace_s=10,
        extra_args={
            "*": ["--storage", str(tmp_path / "storage"), "--agegender", "dlib"],
            "sink": ["--output", str(tmp_path / "output")],
        },
    )
    pool.start()
    api = start_api(server.url, tmp_path, "--max-image-bytes", str(BIG_BYTES + (1 << 20)), token=None)
    client = connect(server.url)
    try:
        wait_until(lambda: not pool.waiting_for(), timeout_s=180, what="every worker to load its models")
        base_photo = (DATA / "astronaut.jpg").read_bytes()
        idle_rss = _rss_mb(api.process.pid)
        with RssSampler(api.process.pid) as small_rss:
            done, seconds = _run(
                api.base, [(base_photo + f"load {i}".encode(), f"load{i:03d}.jpg") for i in range(UPLOADS)]
            )
        big = [(base_photo + os.urandom(BIG_BYTES - len(base_photo)), f"big{i:02d}.jpg") for i in range(BIG_UPLOADS)]
        with RssSampler(api.process.pid) as big_rss:
            big_done, big_seconds = _run(api.base, big)
        del big

        results = [d["result"] for d in done + big_done]
        assert all(r["status"] == "ok" and len(r["faces"]) == 1 for r in results)
        job_ids = [r["job_id"] for r in results]
        assert len(set(r["image_id"] for r in results)) == UPLOADS + BIG_UPLOADS
        announced = [f[b"job_id"].decode() for _id, f in client.xrange(names.RESULTS)]
        assert sorted(announced) == sorted(job_ids), "a result was lost or announced twice"
        assert len(list((tmp_path / "storage").glob("*.json"))) == UPLOADS + BIG_UPLOADS
        assert client.scard(names.INFLIGHT) == 0

        pipeline_s = [_epoch(r["processed_at"]) - _epoch(r["submitted_at"]) for r in results[:UPLOADS]]
        client_s = [d["client_s"] for d in done]
        added_s = [c - p for c, p in zip(client_s, pipeline_s)]
        figures = {
            "uploads": UPLOADS,
            "clients": CLIENTS,
            "wait_s": WAIT_S,
            "answered": len(done),
            "answered_200_in_wait": sum(d["first_status"] == 200 for d in done),
            "results_announced": len(announced),
            "lost": 0,
            "duplicates": 0,
            "seconds": round(seconds, 2),
            "requests_per_s": round(UPLOADS / seconds, 1),
            "client_latency_ms": {
                "p50": round(_percentile(client_s, 50) * 1000, 1),
                "p99": round(_percentile(client_s, 99) * 1000, 1),
            },
            "pipeline_latency_ms": {
                "p50": round(_percentile(pipeline_s, 50) * 1000, 1),
                "p99": round(_percentile(pipeline_s, 99) * 1000, 1),
            },
            "api_added_latency_ms": {
                "p50": round(_percentile(added_s, 50) * 1000, 1),
                "p99": round(_percentile(added_s, 99) * 1000, 1),
                "mean": round(statistics.mean(added_s) * 1000, 1),
            },
            "api_rss_mb": {
                "idle": round(idle_rss, 1),
                "peak_small_uploads": round(small_rss.peak, 1),
                "peak_20mb_uploads": round(big_rss.peak, 1),
            },
            "big_uploads": {
                "count": BIG_UPLOADS,
                "bytes_each": BIG_BYTES,
                "concurrent": CLIENTS,
                "seconds": round(big_seconds, 2),
            },
            "workers": "one per stage, --agegender dlib",
            "photo": "data/astronaut.jpg (75 KB, 1 face)",
            "cpus": os.cpu_count(),
        }
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps(figures, indent=1) + "\n")
        print("\nHTTP load run:", json.dumps(figures, indent=1))
    finally:
        api.stop()
        pool.stop()
        client.close()
        server.stop()
