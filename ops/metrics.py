"""Prometheus metrics (`<app>_<thing>_<unit>`): the API's (`GET /metrics` of `faces serve`) and
each worker's own (`faces worker --metrics-port N`).

The pipeline's state (pending, lag, workers, in flight, dead letters) is read from Redis at each
scrape by a custom collector, so every API process reports the same figures and none drifts;
what only one process sees (its requests, the results it waited for, a worker's counters) are
its own counters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from faces.streams import names
from faces.streams.heartbeat import COUNTS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Submission to result: from a fraction of a second (one small photo) to minutes (a backlog).
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class PipelineCollector:
    """Per stage pending, lag, live workers and processed; images in flight; dead letters;
    from `read_status()` (streams/status.py pipeline_status) at each scrape. `faces_redis_up`
    is 0, and the rest absent, while Redis cannot be read."""

    def __init__(self, read_status: Callable[[], dict[str, Any]]):
        self.read_status = read_status

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("faces_redis_up", "1 when this scrape could read the pipeline's Redis")
        try:
            status = self.read_status()
        except Exception:  # noqa: BLE001 - a scrape must answer; the API's /readyz says why
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from self._stages(status)
        inflight = GaugeMetricFamily("faces_inflight_images", "images submitted and not yet finished")
        inflight.add_metric([], status["inflight"])
        dead = GaugeMetricFamily("faces_dead_letters", "entries on the dead-letter stream")
        dead.add_metric([], status["dead_letters"])
        yield inflight
        yield dead

    def _stages(self, status: dict[str, Any]) -> Iterator[Metric]:
        families = {
            "pending": GaugeMetricFamily(
                "faces_stage_pending", "entries delivered to the stage, not yet acknowledged", labels=["stage"]
            ),
            "lag": GaugeMetricFamily("faces_stage_lag", "entries not yet delivered to the stage", labels=["stage"]),
            "live": GaugeMetricFamily(
                "faces_stage_live_workers", "workers of the stage with a fresh heartbeat", labels=["stage"]
            ),
            "processed": GaugeMetricFamily(
                "faces_stage_processed", "entries settled, summed over the live workers' heartbeats", labels=["stage"]
            ),
            "errors": GaugeMetricFamily(
                "faces_stage_errors",
                "error results that arose in the stage, summed over the live workers' heartbeats",
                labels=["stage"],
            ),
            "dead_letters": GaugeMetricFamily(
                "faces_stage_dead_letters",
                "entries the stage dead-lettered, summed over the live workers' heartbeats",
                labels=["stage"],
            ),
            "minute": GaugeMetricFamily(
                "faces_stage_processed_last_minute", "entries the stage settled over the last 60 s", labels=["stage"]
            ),
        }
        groups = {(s["name"], g["name"]): g for s in status["streams"] for g in s["groups"]}
        for stage in names.STAGE_ORDER:
            live = [w for w in status["workers"] if w["stage"] == stage and w["live"]]
            group = groups.get((names.route(stage).input_stream, stage), {})
            families["pending"].add_metric([stage], group.get("pending", 0))
            families["lag"].add_metric([stage], group.get("lag", 0))
            families["live"].add_metric([stage], len(live))
            for count in COUNTS:
                families[count].add_metric([stage], sum(w[count] for w in live))
            families["minute"].add_metric([stage], status["throughput_per_min"].get(stage, 0))
        yield from families.values()


class ApiMetrics:
    """The API process's registry: the pipeline collector and the API's own counters."""

    def __init__(self, read_status: Callable[[], dict[str, Any]]):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(PipelineCollector(read_status))
        self.requests = Counter(
            "faces_http_requests", "requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.results = Counter(
            "faces_results", "results announced since this process started", ["status"], registry=self.registry
        )
        self.latency = Histogram(
            "faces_result_latency_seconds",
            "submission through this API to result announced",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class WorkerCollector:
    """One worker's counters (streams/consumer.py ConsumerCounters), read at each scrape."""

    def __init__(self, stage: str, consumer: str, counters: Callable[[], Any]):
        self.labels = [stage, consumer]
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        counters = self.counters()
        for field, meaning in (
            ("processed", "entries settled: forwarded, finished or dead-lettered"),
            ("errors", "error results that arose in this stage"),
            ("dead_letters", "entries dead-lettered"),
            ("batches", "batches committed"),
        ):
            family = CounterMetricFamily(f"faces_worker_{field}", meaning, labels=["stage", "consumer"])
            family.add_metric(self.labels, getattr(counters, field, 0) if counters is not None else 0)
            yield family


def serve_worker_metrics(port: int, stage: str, consumer: str, counters: Callable[[], Any]) -> None:
    """Serve this worker's counters on http://0.0.0.0:PORT/metrics (every interface, as a
    container's port must be) from a daemon thread."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(stage, consumer, counters))
    try:
        start_http_server(port, registry=registry)
    except OSError as exc:  # its strerror is the line `faces worker` prints
        raise OSError(
            exc.errno, f"cannot serve metrics on port {port} ({exc.strerror or exc}): pick another --metrics-port"
        ) from exc
