"""Later stages first (issue 27): the pool starts each stage's workers nicer than itself by
STAGE_NICENESS, so that on a few cores the kernel gives a stage the CPU its input needs instead of
an equal share per process (docs/benchmark.md, "Later stages first"). Real `faces worker`
processes against a real redis-server; a restarted worker keeps its stage's niceness."""

from __future__ import annotations

import os

from faces import settings as defaults
from faces.streams.names import STAGE_ORDER
from tests.waiting import wait_until
from tests.worker_pools import stage_pool

MAX_NICENESS = 19  # the kernel's limit: a niceness added beyond it stops there


def niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def expected(stage: str) -> int:
    return min(MAX_NICENESS, niceness(0) + defaults.STAGE_NICENESS[stage])


def test_every_stage_runs_at_its_niceness_and_keeps_it_when_restarted(redis_url, tmp_path):
    pool = stage_pool(redis_url, tmp_path)
    pool.start()
    try:
        seen = {worker.stage: niceness(worker.process.pid) for worker in pool.workers}
        assert seen == {stage: expected(stage) for stage in STAGE_ORDER}
        assert seen["detect"] > seen["landmarks"] > seen["agegender"] > seen["embed"] == seen["sink"]

        [detect] = pool.by_stage("detect")
        first_pid = detect.process.pid
        detect.process.kill()
        detect.process.wait()

        def restarted() -> bool:
            pool.supervise()
            return detect.restarts == 1 and detect.alive

        wait_until(restarted, timeout_s=30, what="the detect worker restarted")
        assert detect.process.pid != first_pid
        assert niceness(detect.process.pid) == expected("detect")
    finally:
        pool.stop()
