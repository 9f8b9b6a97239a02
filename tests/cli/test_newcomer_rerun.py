"""Running `faces run` again after Ctrl-C analyses the remaining images once (issue 26 item 1):
the interrupted run withdraws the jobs no worker had started (their entries, bytes and
in-flight slots), and the rerun takes over the jobs still in the pipeline instead of submitting
their images again. Real CLI in its own process group (a terminal's Ctrl-C reaches the workers
too), the embedded Redis 6.2, real workers and files; the results stream is read afterwards."""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from pathlib import Path

from faces.ops import exits
from faces.schemas import events
from faces.streams import names
from faces.streams.connection import connect
from faces.streams.embedded import EmbeddedRedis
from faces.streams.reading import PAYLOAD_FIELD
from tests.fixtures_redis import REDIS6, server_binary
from tests.images import photo_variants
from tests.pipeline import PATH_WITHOUT_REDIS, faces_cli, faces_process, result_files, run_args
from tests.waiting import wait_until

IMAGES = 60


def _pipeline_records(state: Path) -> tuple[Counter, list[str], int]:
    """From the stopped stack's Redis: announcements per image id on the results stream, the
    image ids of the jobs on the images stream, and the jobs still in flight."""
    server = EmbeddedRedis(state, binary=server_binary(REDIS6))
    server.start()
    try:
        client = connect(server.url)
        announced = Counter(fields[b"image_id"].decode() for _, fields in client.xrange(names.RESULTS))
        queued = [events.decode(fields[PAYLOAD_FIELD])["image_id"] for _, fields in client.xrange(names.IMAGES)]
        return announced, queued, int(client.scard(names.INFLIGHT))
    finally:
        server.stop()


def run_photos(tmp_path: Path) -> list[str]:
    """`faces run` on the test's photos folder, its state and storage in the test's folder."""
    return run_args(
        tmp_path / "photos", tmp_path / "state", tmp_path / "storage", "--no-visualize", "--timeout-s", "240"
    )


def test_rerun_after_ctrl_c_analyses_each_remaining_image_once(tmp_path):
    """Ctrl-C while most of 60 images are still queued: the run exits 130 naming how many it
    withdrew; the same command again finishes the rest. Every image then has exactly one ok
    result announced and one job on the images stream, and nothing is left in flight."""
    photo_variants(tmp_path / "photos", IMAGES, source="astronaut.jpg")
    command = run_photos(tmp_path)
    # A short claim time: a job a stopped worker still held is taken over within seconds.
    env = {"PATH": PATH_WITHOUT_REDIS, "DEEPFACE_HOME": str(tmp_path / "no-weights"), "FACES_CLAIM_IDLE_MS": "3000"}
    first = faces_process(*command, env=env, piped=True, start_new_session=True)
    try:
        wait_until(
            lambda: len(list((tmp_path / "storage").glob("*.json"))) >= 2 or first.poll() is not None,
            timeout_s=180,
            interval_s=0.02,
            what="the first results",
        )
        os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C on a terminal does
        _out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == exits.INTERRUPTED, err
    stopped = re.search(rf"interrupted: (\d+) of {IMAGES} images have results .*; (\d+) left", err)
    assert stopped and sum(map(int, stopped.groups())) == IMAGES, err

    again = faces_cli(*command, env=env)
    assert again.returncode == exits.OK, again.stdout + again.stderr
    results = result_files(tmp_path / "storage")
    assert len(results) == IMAGES and {r["status"] for r in results.values()} == {"ok"}

    announced, queued, in_flight = _pipeline_records(tmp_path / "state")
    assert announced == Counter({image_id: 1 for image_id in results}), announced
    assert sorted(queued) == sorted(results)  # withdrawn jobs left the stream; none submitted twice
    assert in_flight == 0
    withdrawn = re.search(r"left \((\d+) withdrawn from the queue\)", err)
    assert withdrawn and 0 < int(withdrawn.group(1)) <= int(stopped.group(2)), err


def test_run_takes_over_jobs_already_in_flight_for_its_images(tmp_path):
    """Six images published (with the real producer) to the state dir's Redis while no worker
    ran, plus a seventh never submitted: `faces run` on the folder submits only the seventh,
    says six were awaited from an earlier run, and each image gets exactly one result."""
    from faces.producer.submit import submit_file

    photos = photo_variants(tmp_path / "photos", 7, source="astronaut.jpg")
    server = EmbeddedRedis(tmp_path / "state", binary=server_binary(REDIS6))
    server.start()
    try:
        client = connect(server.url)
        for path in photos[:6]:
            submit_file(client, path)
        client.close()
    finally:
        server.stop()

    ran = faces_cli(
        *run_photos(tmp_path),
        env={"PATH": PATH_WITHOUT_REDIS, "DEEPFACE_HOME": str(tmp_path / "no-weights")},
    )
    assert ran.returncode == exits.OK, ran.stdout + ran.stderr
    results = result_files(tmp_path / "storage")
    announced, queued, in_flight = _pipeline_records(tmp_path / "state")
    assert len(results) == 7 and announced == Counter({image_id: 1 for image_id in results}), announced
    assert sorted(queued) == sorted(results) and in_flight == 0
    assert "7 images: 7 ok" in ran.stdout
    assert "6 images still in the pipeline from an earlier run: awaited, not submitted again" in ran.stdout
