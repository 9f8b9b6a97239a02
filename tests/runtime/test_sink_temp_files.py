"""Issue 22 item 17: a sink killed mid-write leaves its temporary file (`.NAME.json.XXXXXXXX.tmp`)
beside the results; a sink starting sweeps the old ones from --storage and --output, and leaves
young ones (a sibling sink's write in progress) and every other file alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

from faces.ops.supervise.pool import READY_FILE_ENV
from tests.pipeline import faces_process
from tests.waiting import wait_until

HOURS_AGO_2 = time.time() - 2 * 3600


def plant(path: Path, *, old: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'{"half": ')
    if old:
        os.utime(path, (HOURS_AGO_2, HOURS_AGO_2))
    return path


def test_a_starting_sink_sweeps_old_temp_files_and_keeps_young_ones_and_results(tmp_path, redis_url):
    """Before the sink is ready, the temporary files older than an hour in --storage and
    --output are gone; a young temporary file, an old result, an old picture and an old file of
    the user's that only ends in .tmp are all still there, byte for byte."""
    storage, output = tmp_path / "storage", tmp_path / "output"
    old = [
        plant(storage / ".a-0123abcd.json.k2j4_9xq.tmp", old=True),
        plant(storage / ".漢字写真-89abcdef.json.ab12cd34.tmp", old=True),
        plant(output / ".a-0123abcd.jpg.zz99yy88.tmp", old=True),
    ]
    kept = [
        plant(storage / ".b-0123abcd.json.qwer1234.tmp", old=False),
        plant(output / ".b-0123abcd.jpg.asdf5678.tmp", old=False),
        plant(storage / "a-0123abcd.json", old=True),
        plant(output / "a-0123abcd.jpg", old=True),
        plant(storage / "notes.tmp", old=True),
        plant(storage / ".notes.tmp", old=True),
    ]
    ready = tmp_path / "ready"
    log = open(tmp_path / "sink.log", "wb")
    worker = faces_process(
        *("worker", "sink", "--redis-url", redis_url, "--storage", str(storage), "--output", str(output)),
        *("--block-ms", "200"),
        env={READY_FILE_ENV: str(ready)},
        stdout=log,
        stderr=log,
    )
    try:
        wait_until(lambda: ready.exists() or worker.poll() is not None, timeout_s=90, what="the sink to be ready")
        assert worker.poll() is None, (tmp_path / "sink.log").read_text()
        assert [p.name for p in old if p.exists()] == []
        assert [p.name for p in kept if not p.exists()] == []
        assert all(p.read_bytes() == b'{"half": ' for p in kept)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
