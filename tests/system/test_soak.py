"""Soak run (`make soak`, not in `make test`): tens of thousands of small photos through a
`faces up`-like stack until memory has reached its steady state, and then some.

The stack is what `faces up` runs (the embedded redis-server with its AOF, one worker per
stage), with a result TTL and an images-stream retention of 30 s instead of days, so that
both windows fill within the run: after that, Redis holds about 30 s worth of results and
60 s worth of history at most (the detect worker trims every 30 s), whatever the number of
images. The producer is `faces submit` with backpressure (500 in flight). Memory is sampled
every 500 announced images; once the windows have filled, the slope of memory over images
processed must be flat, and at the end every image is announced once with an ok result and
Redis memory is back to its baseline once the results have expired.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from faces.ops.supervise.pool import WorkerPool
from faces.producer.submit import submit_file
from faces.streams import names
from faces.streams.connection import connect
from faces.streams.embedded import EmbeddedRedis
from faces.streams.groups import text
from tests.chaos_helpers import (
    RESULT_TTL_ENV,
    Announcements,
    Expected,
    assert_exact_completion,
    drained_memory,
    median_slope,
    no_latency_histograms,
    quiet_library_logs,  # noqa: F401 - a fixture
    rss_bytes,
    slope,
    used_memory,
)
from tests.images import DATA
from tests.pipeline import total_pending
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("quiet_library_logs")]

MIN_IMAGES = 20_000
RESULT_TTL_S = 30
RETENTION_S = 30
TRIM_EVERY_S = 30  # RuntimeSettings.trim_every_s: how often a worker trims its input
WARM_UP_S = RETENTION_S + TRIM_EVERY_S + 10  # history, results and trimming all at their level
STEADY_S = 150  # at least this long at steady state: five trim periods to fit over
HIGH_WATER = 500
SAMPLE_EVERY = 500
SIDE = 64
# Flat means: Redis memory outside the streams and the result copies grows by less than this
# many bytes per image processed, fitted over the steady state. Anything else kept per image
# would cost more: the image bytes ~2 KB, a counter or marker key ~100 B, an in-flight set
# member ~60 B. The streams are left out of the fit because each is trimmed every 30 s: a
# sawtooth of ~2 KB per image of the last 30-60 s (10-15 MB here) that would swamp it; they are
# checked by the age of their oldest entry, which trimming bounds. The result copies (~1 KB,
# ~6 MB here) follow the throughput of the last 30 s, which this shared machine varies: they
# are checked by the TTL each was written with.
REDIS_SLOPE_MAX_B = 32
AGE_MARGIN_S = 15  # trim timers start with the workers; a batch in hand is not trimmed
# Workers: Python's and the allocators' caches settle in the first thousands of images; past
# that, a leak of anything per image (a decoded 64x64 image is 12 KB, a result dict ~2 KB)
# would show at 1 KB per image or more. RSS moves in steps (a new arena: 2 MB at once, seen at
# the end of a run), so the slope is the median of pairwise slopes, which a step does not move.
RSS_SLOPE_MAX_B = 256


def small_photos(folder: Path, seed: int = 7):
    """An endless supply of distinct SIDExSIDE JPEGs cut from the sample photos at random
    places and scales (some hold a face); written as they are asked for."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = [cv2.imread(str(p)) for p in sorted(DATA.glob("*.jpg"))]
    index = 0
    while True:
        image = sources[index % len(sources)]
        height, width = image.shape[:2]
        size = int(rng.integers(SIDE, min(height, width, 4 * SIDE)))
        y, x = int(rng.integers(0, height - size)), int(rng.integers(0, width - size))
        crop = cv2.resize(image[y : y + size, x : x + size], (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        path = folder / f"s{index:06d}.jpg"
        path.write_bytes(data.tobytes() + f"soak {index}".encode())  # distinct bytes, same pixels
        yield path
        index += 1


class Sampler:
    """One row every SAMPLE_EVERY images announced: Redis memory, split into the streams (each
    trimmed every TRIM_EVERY_S: a sawtooth), the result copies (as many as were announced in the
    last RESULT_TTL_S: they follow the throughput) and the rest (image bytes in flight, the
    in-flight set, counters, clients: a level), the age of each stream's oldest entry, and each
    worker's RSS."""

    def __init__(self, client, pool: WorkerPool, announced: Announcements, started: float):
        self.client, self.pool, self.announced, self.started = client, pool, announced, started
        self.rows: list[dict] = []
        self.next_at = SAMPLE_EVERY
        self.polled_at = 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self.polled_at < 0.2:
            return
        self.polled_at = now
        if self.announced.poll() < self.next_at:
            return
        self.next_at += SAMPLE_EVERY
        memory = used_memory(self.client)
        streams = {s: int(self.client.memory_usage(s, samples=0) or 0) for s in STREAMS}
        copies = self._copies_bytes()
        self.rows.append(
            {
                "t": now - self.started,
                "done": self.announced.count,
                **memory,
                "results": streams[names.RESULTS],
                "streams": sum(streams.values()),
                "copies": len(copies),
                "copies_bytes": sum(copies),
                "rest": memory["used"] - sum(streams.values()) - sum(copies),
                "inflight": int(self.client.scard(names.INFLIGHT)),
                "history": int(self.client.xlen(names.IMAGES)),
                **{f"age_{s}": self._oldest_age_s(s) for s in names.PIPELINE_STREAMS},
                **{f"rss_{w.slot}": rss_bytes(w.process.pid) for w in self.pool.workers},
            }
        )

    def _copies_bytes(self) -> list[int]:
        pipe = self.client.pipeline(transaction=False)
        for key in self.client.scan_iter(match=names.result_key("*"), count=1000):
            pipe.memory_usage(key, samples=0)
        return [int(b or 0) for b in pipe.execute()]

    def _oldest_age_s(self, stream: str) -> float:
        first = self.client.xrange(stream, count=1)
        return time.time() - int(text(first[0][0]).split("-")[0]) / 1000 if first else 0.0

    def steady(self) -> list[dict]:
        return [r for r in self.rows if r["t"] >= WARM_UP_S]


STREAMS = (*names.PIPELINE_STREAMS, names.RESULTS)


def _table(rows: list[dict]) -> str:
    slots = sorted(k for k in rows[0] if k.startswith("rss_"))
    ages = [f"age_{s}" for s in names.PIPELINE_STREAMS]
    head = (
        f"{'t_s':>5} {'images':>7} {'used_MB':>8} {'dataset_MB':>10} {'streams_MB':>10} "
        f"{'results_MB':>10} {'copies':>6} {'copies_MB':>9} {'rest_MB':>8} {'inflight':>8} {'history':>7} "
        f"{'oldest_s(images/detected/landmarked/analyzed)':>46} " + " ".join(f"{s[4:]:>12}" for s in slots)
    )
    lines = [head]
    for r in rows:
        mb = lambda b: f"{b / 1e6:.2f}"  # noqa: E731
        lines.append(
            f"{r['t']:>5.0f} {r['done']:>7} {mb(r['used']):>8} {mb(r['dataset']):>10} "
            f"{mb(r['streams']):>10} {mb(r['results']):>10} {r['copies']:>6} "
            f"{mb(r['copies_bytes']):>9} {mb(r['rest']):>8} {r['inflight']:>8} {r['history']:>7} "
            f"{' / '.join(f'{r[a]:.0f}' for a in ages):>46} " + " ".join(f"{mb(r[s]) + ' MB':>12}" for s in slots)
        )
    return "\n".join(lines)


@pytest.mark.timeout(3600)
def test_soak_memory_stays_flat_and_every_image_completes(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "no-weights"))
    monkeypatch.setenv(RESULT_TTL_ENV, str(RESULT_TTL_S))
    server = EmbeddedRedis(tmp_path / "redis")  # the embedded default, as `faces up` runs it
    server.start()
    client = connect(server.url)
    no_latency_histograms(client)
    storage = tmp_path / "storage"
    pool = WorkerPool(
        server.url,
        tmp_path / "logs",
        grace_s=10,
        extra_args={
            "*": [
                "--batch",
                "8",
                "--storage",
                str(storage),
                "--result-ttl-s",
                str(RESULT_TTL_S),
                "--retention-s",
                str(RETENTION_S),
            ],
            "sink": ["--no-visualize"],
        },
    )  # 20,000+ annotated pictures would measure the disk
    pool.start()
    wait_until(
        lambda: pool.supervise() or sum(c.get("cmd") == "xreadgroup" for c in client.client_list()) >= 4,
        timeout_s=180,
        interval_s=0.2,
        what="every worker reading its stream",
    )
    baseline = used_memory(client)
    announced = Announcements(client)
    started = time.monotonic()
    sample = Sampler(client, pool, announced, started)
    expected: list[Expected] = []
    try:
        for path in small_photos(tmp_path / "in"):
            if len(expected) >= MIN_IMAGES and time.monotonic() - started >= WARM_UP_S + STEADY_S:
                break
            job = submit_file(
                client, path, high_water=HIGH_WATER, should_stop=lambda: pool.supervise() or False, while_waiting=sample
            )
            expected.append(Expected(job.job_id, job.image_id, job.path))
            sample()
        wait_until(
            lambda: sample() or pool.supervise() or announced.count >= len(expected),
            timeout_s=600,
            interval_s=0.2,
            what="every image announced",
        )
        seconds = time.monotonic() - started
        wait_until(lambda: total_pending(client) == 0, timeout_s=60, what="nothing pending")
        peak = int(client.info("memory")["used_memory_peak"])
        assert_exact_completion(client, storage, expected, announced)
        memory = drained_memory(client, baseline, RESULT_TTL_S)
        restarts = {w.slot: w.restarts for w in pool.workers}
    finally:
        pool.stop()
        server.stop()

    steady = sample.steady()
    done = [r["done"] for r in steady]
    rest_slope = slope(done, [r["rest"] for r in steady])
    raw_slope = slope(done, [r["used"] for r in steady])
    rss_slopes = {k[4:]: median_slope(done, [r[k] for r in steady]) for k in steady[0] if k.startswith("rss_")}
    rss_ls = {k[4:]: slope(done, [r[k] for r in steady]) for k in steady[0] if k.startswith("rss_")}
    oldest = {s: max(r[f"age_{s}"] for r in steady) for s in names.PIPELINE_STREAMS}
    used = [r["used"] for r in steady]
    print(f"\n{_table(sample.rows)}")
    print(f"{len(expected)} images in {seconds:.0f} s: {len(expected) / seconds:.1f} images/s")
    print(
        f"Redis: baseline {baseline['used'] / 1e6:.2f} MB; peak {peak / 1e6:.2f} MB (INFO used_memory_peak; "
        f"sampled {max(r['used'] for r in sample.rows) / 1e6:.2f} MB); steady state {min(used) / 1e6:.2f}-"
        f"{max(used) / 1e6:.2f} MB, mean {sum(used) / len(used) / 1e6:.2f} MB; end {memory['used'] / 1e6:.2f} MB "
        f"(allowed {memory['allowed'] / 1e6:.2f} MB: baseline + {memory['kept_keys'] / 1e6:.2f} MB of "
        f"announcements and counters + {memory['client_buffers'] / 1e6:.2f} MB of client buffers + "
        f"{memory['key_tables'] / 1e6:.2f} MB of key tables + slack)"
    )
    print(
        f"slopes over {len(steady)} steady samples ({done[0]}-{done[-1]} images): Redis without the "
        f"streams and result copies {rest_slope:.1f} B/image; all of used_memory {raw_slope:.1f} B/image (the announcements "
        f"stream grows by design, up to {names.RESULTS_MAXLEN} entries); oldest entry per stream "
        f"{ {s: round(a) for s, a in oldest.items()} } s; worker RSS (median slope; least squares) "
        f"{', '.join(f'{k} {v:.1f}; {rss_ls[k]:.1f}' for k, v in rss_slopes.items())} B/image"
    )
    assert restarts == {w: 0 for w in restarts}, f"workers died during the soak: {restarts}"
    assert len(steady) >= 10, "too few samples at steady state to fit a slope"
    assert abs(rest_slope) < REDIS_SLOPE_MAX_B, f"Redis memory grows {rest_slope:.0f} B per image"
    announced.assert_ttls_within(RESULT_TTL_S)  # result copies are bounded by their TTL
    # The streams are bounded by their trimming: history kept RETENTION_S (plus up to one trim
    # period), the other streams only what is not yet acknowledged (plus one trim period).
    assert oldest[names.IMAGES] < RETENTION_S + TRIM_EVERY_S + AGE_MARGIN_S, oldest
    for stream in names.PIPELINE_STREAMS[1:]:
        assert oldest[stream] < TRIM_EVERY_S + AGE_MARGIN_S, oldest
    for slot, value in rss_slopes.items():
        assert value < RSS_SLOPE_MAX_B, f"{slot} RSS grows {value:.0f} B per image"
