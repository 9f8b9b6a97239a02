"""One worker process per stage, as the HTTP and producer tests run the pipeline behind what they
test: the bundled dlib age/gender model (no weights to fetch), logs, storage and output in the
test's folder."""

from __future__ import annotations

from pathlib import Path

from faces.ops.supervise.pool import WorkerPool

# Short blocking reads and small batches: a test's few images move on at once.
BATCHED = ("--block-ms", "200", "--batch", "4")


def stage_pool(redis_url: str, folder: Path, *sink_args: str) -> WorkerPool:
    """A WorkerPool (not started yet) on `redis_url`: every worker BATCHED with its results under
    `folder`/storage, the sink's pictures under `folder`/output and its extra options `sink_args`."""
    every = [*BATCHED, "--storage", str(folder / "storage"), "--agegender", "dlib"]
    sink = ["--output", str(folder / "output"), *sink_args]
    return WorkerPool(redis_url, folder / "logs", grace_s=10, extra_args={"*": every, "sink": sink})
