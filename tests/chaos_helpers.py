"""What the chaos and soak runs share (tests/system/test_chaos.py, tests/system/test_soak.py): the results
read as they are announced, Redis calls that ride out a server restart, the exact end-of-run
checks, memory and RSS figures, and the worker logs.

A result's Redis copy expires after the workers' result TTL (FACES_RESULT_TTL_S, short in these
runs so that memory can be seen coming back to its baseline), long before a run ends; so each
copy is read as soon as its job is announced, and the last copy read of an image is its final
one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import redis
import structlog

from faces.streams import deadletters, history, names
from faces.streams.embedded import EmbeddedRedis
from faces.streams.groups import text
from tests.pipeline import total_pending
from tests.waiting import wait_until

T = TypeVar("T")

RESULT_TTL_ENV = "FACES_RESULT_TTL_S"  # `faces worker --result-ttl-s`; set in the workers' env


@pytest.fixture
def quiet_library_logs():
    """Only warnings from the library code running in the test process (one line per image
    submitted would bury the run's report); the workers log to their own files."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    yield
    structlog.configure(**saved)


# -- Redis across a restart ----------------------------------------------------------------
def retrying(action: Callable[[], T], what: str, timeout_s: float = 60.0) -> T:
    """`action()`, tried again while Redis is down or loading its AOF (our own server restart).
    Only for reads, or writes that are safe to repeat."""
    box: list[T] = []

    def attempt() -> bool:
        try:
            box.append(action())
            return True
        except (redis.ConnectionError, redis.TimeoutError):  # BusyLoadingError is one too
            return False

    wait_until(attempt, timeout_s=timeout_s, interval_s=0.1, what=f"Redis back for {what}")
    return box[0]


# -- what was submitted, what came out -------------------------------------------------------
@dataclass(frozen=True)
class Expected:
    """One submitted job and how it must end."""

    job_id: str
    image_id: str
    path: str
    status: str = "ok"  # "error" for a bad file
    reason: str | None = None  # the error.type a bad file must get


class Announcements:
    """The results stream (`faces:results`) read as it grows, with each announced image's Redis
    copy (`faces:result:<image id>`) and its remaining TTL read in the same round trip."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.cursor = "0-0"
        self.jobs: list[tuple[str, str, str]] = []  # (job id, image id, status), in order
        self.copies: dict[str, dict | None] = {}  # image id -> summary of the last copy read
        self.min_ttl_s: int | None = None  # shortest TTL seen on a result copy (-1: none)
        self.max_ttl_s = 0  # longest TTL seen on a result copy

    @property
    def count(self) -> int:
        return len(self.jobs)

    @property
    def job_ids(self) -> list[str]:
        return [job_id for job_id, _, _ in self.jobs]

    def assert_ttls_within(self, ttl_s: int) -> None:
        """Every copy read carried an expiry, of at most `ttl_s` (the workers' result TTL)."""
        assert self.min_ttl_s is not None and self.min_ttl_s > 0 and self.max_ttl_s <= ttl_s, (
            f"result copies' TTLs ranged {self.min_ttl_s}..{self.max_ttl_s} s, expected 1..{ttl_s} s: "
            f"do the workers apply {RESULT_TTL_ENV} (`faces worker --result-ttl-s`)?"
        )

    def poll(self) -> int:
        """Read what was announced since the last call; the number announced so far."""
        while True:
            rows = retrying(
                lambda: self.client.xrange(names.RESULTS, min=f"({self.cursor}", count=1000), "reading announcements"
            )
            if not rows:
                return self.count
            new = [(text(f[b"job_id"]), text(f[b"image_id"]), text(f[b"status"])) for _, f in rows]
            keys = [names.result_key(image_id) for _, image_id, _ in new]

            def copies(keys=keys):
                pipe = self.client.pipeline(transaction=False)
                for key in keys:
                    pipe.get(key)
                    pipe.ttl(key)
                return pipe.execute()

            replies = retrying(copies, "reading result copies")
            for (_job, image_id, _status), raw, ttl in zip(new, replies[::2], replies[1::2]):
                self.copies[image_id] = summary(json.loads(raw)) if raw is not None else None
                self.max_ttl_s = max(self.max_ttl_s, int(ttl))
                self.min_ttl_s = int(ttl) if self.min_ttl_s is None else min(self.min_ttl_s, int(ttl))
            self.jobs.extend(new)
            self.cursor = text(rows[-1][0])


def summary(result: dict) -> dict:
    """What the checks need of a result document (a soak holds tens of thousands)."""
    return {
        "job_id": result["job_id"],
        "status": result["status"],
        "error": result["error"],
        "faces": len(result["faces"]),
    }


def stored_results(storage: Path) -> dict[str, dict]:
    """Image id -> summary of its result file."""
    return {p.stem: summary(json.loads(p.read_bytes())) for p in sorted(storage.glob("*.json"))}


def assert_exact_completion(
    client: redis.Redis, storage: Path, expected: list[Expected], announced: Announcements
) -> None:
    """Every job announced exactly once with its status; every image's final result (file and
    Redis copy) is its latest submission's, ok for photos and an error with the right reason for
    bad files; nothing pending, no dead letter, no image bytes or in-flight job left."""
    ids = announced.job_ids
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert len(ids) == len(set(ids)), f"announced more than once: {duplicates}"
    assert sorted(ids) == sorted(e.job_id for e in expected), (
        f"never announced: {sorted({e.job_id for e in expected} - set(ids))}; "
        f"announced but never submitted: {sorted(set(ids) - {e.job_id for e in expected})}"
    )
    by_job = {e.job_id: e for e in expected}
    latest = {e.image_id: e.job_id for e in expected}  # the last submission of each image
    # An earlier submission that finishes after its image's newer result was kept is announced
    # `superseded` (issue 22 item 11): its result was not stored, and that is said, not `ok`.
    wrong = [
        (job_id, status)
        for job_id, _, status in announced.jobs
        if status != by_job[job_id].status
        and not (status == "superseded" and latest[by_job[job_id].image_id] != job_id)
    ]
    assert not wrong, f"announced with the wrong status: {wrong[:10]}"

    final = {e.image_id: e for e in expected}  # in submission order: the latest submission wins
    files = stored_results(storage)
    assert sorted(files) == sorted(final), "result files differ from the images submitted"
    for image_id, e in final.items():
        for where, doc in (("file", files[image_id]), ("redis copy", announced.copies.get(image_id))):
            assert doc is not None, f"{where} of {image_id} missing when its job was announced"
            assert (doc["job_id"], doc["status"]) == (e.job_id, e.status), (
                f"{where} of {image_id}: job {doc['job_id']} {doc['status']}, expected job {e.job_id} {e.status}"
            )
            if e.status == "error":
                assert doc["error"]["type"] == e.reason and doc["error"]["message"], (where, doc["error"])
            else:
                assert doc["error"] is None, (where, doc["error"])

    assert total_pending(client) == 0
    letters = deadletters.list_all(client, limit=20)
    assert not letters, f"dead letters: {[(d.stage, d.image_id, d.error_type, d.message) for d in letters]}"
    assert client.scard(names.INFLIGHT) == 0, "jobs still in flight"
    assert not list(client.scan_iter(match=names.blob_key("*"), count=1000)), "image bytes left behind"


# -- memory ------------------------------------------------------------------------------------
def no_latency_histograms(client: redis.Redis) -> None:
    """Redis 7 (and Valkey) allocate a latency histogram of about 24 KB the first time each
    command is used (`latency-tracking`): some 20 commands of a run would show as half a MB of
    growth against a baseline taken before they were used, and it is not data. Turned off for
    memory measurements (before any worker connects). Redis 6.2 has no such histograms."""
    try:
        client.config_set("latency-tracking", "no")
    except redis.ResponseError:
        pass


class QuietRedis7(EmbeddedRedis):
    """The embedded server, Redis 7 only, started with `latency-tracking no` (see
    no_latency_histograms): a restarted server must not track either, and workers reconnect
    before a CONFIG SET sent after the restart could land."""

    def command_line(self) -> list[str]:
        return [*super().command_line(), "--latency-tracking", "no"]


def used_memory(client: redis.Redis) -> dict[str, int]:
    """used_memory, its dataset part, and two parts of its overhead: the clients' buffers and
    the key tables of db 0 (sized for the most keys held at once)."""
    info = retrying(lambda: client.info("memory"), "INFO memory")
    stats = retrying(lambda: client.memory_stats(), "MEMORY STATS")
    db = stats.get("db.0") or {}
    return {
        "used": int(info["used_memory"]),
        "dataset": int(info["used_memory_dataset"]),
        "clients": int(stats["clients.normal"]),
        "tables": int(db.get("overhead.hashtable.main", 0)) + int(db.get("overhead.hashtable.expires", 0)),
    }


# Redis memory "back to its baseline" at the end of a run means: used_memory at most the
# baseline (taken with every worker connected, before any image) plus what the drained pipeline
# legitimately keeps, measured key by key (DRAINED_KINDS: the announcements stream, the
# counters), plus the growth of two structures that are not data and that Redis shrinks in its
# own time: the clients' buffers (a connection that sent a 75 KB image keeps a larger query
# buffer for a while) and the key tables (sized for the 10,000 keys of a backlog, shrunk by the
# server's cron once nearly empty), plus this slack: the scripts' cache, the AOF buffer, and
# what MEMORY USAGE does not see of the kept keys (allocation rounding); 0-100 KB of it seen
# after 5,000 images, not pinned down further. A leak of anything per job is far above it:
# 500 result copies are over 1 MB, 500 photos' bytes 37 MB, 5,000 tiny images' 16 MB; leftover
# bytes and copies are also checked key by key.
MEMORY_SLACK_BYTES = 256 << 10


def keys_by_kind(client: redis.Redis) -> dict[str, int]:
    """Keys of the pipeline counted by kind: `faces:stats:detect:123` -> "faces:stats"."""
    kinds: dict[str, int] = {}
    for key in client.scan_iter(match=f"{names.PREFIX}:*", count=1000):
        key = text(key)
        kind = key if key in _NAMED_KEYS else ":".join(key.split(":")[:2])
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


_NAMED_KEYS = {*names.PIPELINE_STREAMS, names.RESULTS, names.DEAD_LETTERS, names.INFLIGHT, names.GROUPS_CREATED}
# What a drained pipeline legitimately keeps: its streams (empty, with their groups), the
# announcements (capped at RESULTS_MAXLEN), the group markers and the throughput counters
# (10 s buckets that expire after STATS_TTL_S) and the published-job markers (expire after
# publishing.PUBLISHED_MEMORY_S), the heartbeats (one field per worker; a SIGKILLed
# worker's stays until a reader prunes it, HEARTBEAT_STALE_S later: this check failed on it
# already at 14483b7), and recognition's records (kept until a person is removed: README,
# Recognition; their bytes count in kept_keys like the rest).
DRAINED_KINDS = {
    *names.PIPELINE_STREAMS,
    names.RESULTS,
    names.GROUPS_CREATED,
    names.HEARTBEATS,
    f"{names.PREFIX}:stats",
    f"{names.PREFIX}:published",
    names.RECOGNITION_PREFIX,  # every analysed face's descriptor and who it is: users' data, kept
}


def drained_memory(
    client: redis.Redis, baseline: dict[str, int], ttl_s: float, slack_bytes: int = MEMORY_SLACK_BYTES
) -> dict[str, int]:
    """Wait for every result copy to expire, drop the images stream's history (what
    `faces trim --retention-s 0` does), check only DRAINED_KINDS of keys are left, and wait for
    used_memory to come back to `baseline` (a used_memory() reading) plus what those keys hold,
    plus the growth of the client buffers and key tables, plus `slack_bytes` (see
    MEMORY_SLACK_BYTES). Returns the figures."""
    wait_until(
        lambda: not list(client.scan_iter(match=names.result_key("*"), count=1000)),
        timeout_s=ttl_s + 30,
        interval_s=0.5,
        what=f"result copies to expire (TTL {ttl_s} s)",
    )
    history.trim_all(client, 0)
    kinds = keys_by_kind(client)
    assert set(kinds) <= DRAINED_KINDS, f"keys left: {kinds}"
    figures: dict[str, int] = {}

    def settled() -> bool:
        kept = sum(
            int(client.memory_usage(k, samples=0) or 0) for k in client.scan_iter(match=f"{names.PREFIX}:*", count=1000)
        )
        rewriting = int(client.info("persistence").get("aof_rewrite_in_progress", 0))
        now = used_memory(client)
        buffers = max(0, now["clients"] - baseline["clients"])
        tables = max(0, now["tables"] - baseline["tables"])
        figures.update(
            now,
            kept_keys=kept,
            client_buffers=buffers,
            key_tables=tables,
            baseline=baseline["used"],
            allowed=baseline["used"] + kept + buffers + tables + slack_bytes,
        )
        return not rewriting and figures["used"] <= figures["allowed"]

    try:
        wait_until(settled, timeout_s=30, interval_s=0.5, what="Redis memory back to its baseline")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {figures}, keys {kinds}") from None
    return figures


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var


def median_slope(xs: list[float], ys: list[float]) -> float:
    """Theil-Sen slope (median of the pairwise slopes): a steady growth shows, a single step
    (an allocator taking one more arena) does not."""
    pairs = sorted(
        (ys[j] - ys[i]) / (xs[j] - xs[i]) for i in range(len(xs)) for j in range(i + 1, len(xs)) if xs[j] != xs[i]
    )
    middle = len(pairs) // 2
    return pairs[middle] if len(pairs) % 2 else (pairs[middle - 1] + pairs[middle]) / 2


# -- worker logs -----------------------------------------------------------------------------
def log_events(log_dir: Path, pattern: str = "*.log") -> list[dict]:
    """Every JSON log line the workers wrote (other lines, e.g. TensorFlow's, are skipped)."""
    out = []
    for path in sorted(log_dir.glob(pattern)):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                event["log"] = path.name
                out.append(event)
    return out
