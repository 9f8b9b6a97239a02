"""`faces serve` stopped while uploads wait for their results (?wait=): each is answered 202 with
its status URL at once and the server exits, instead of holding the stop for the whole wait
(uvicorn lets every open request finish first; a compose or systemd stop timeout shorter than
--wait-max-s used to kill it). A real `faces serve` against a real redis-server with no workers,
so no result ever comes."""

from __future__ import annotations

import threading

import httpx

from faces.ops import exits
from faces.streams.connection import connect
from faces.streams.names import INFLIGHT
from tests.api_server import TOKEN, photo, start_api, start_redis
from tests.waiting import wait_until

WAIT_S = 60  # far longer than the stop may take
STOP_S = 15  # the stop, answers included, well within the wait


def test_uploads_waiting_for_a_result_are_answered_202_when_the_server_stops(tmp_path):
    redis = start_redis(tmp_path)
    api = start_api(redis.url, tmp_path)
    client = connect(redis.url)
    answers: list[httpx.Response] = []

    def upload(i: int) -> None:
        with httpx.Client(base_url=api.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=WAIT_S + 30) as c:
            answers.append(
                c.post(f"/v1/images?wait={WAIT_S}", content=photo(i), headers={"Content-Type": "image/jpeg"})
            )

    uploads = [threading.Thread(target=upload, args=(i,), daemon=True) for i in range(2)]
    try:
        for thread in uploads:
            thread.start()
        wait_until(lambda: client.scard(INFLIGHT) == 2, what="both uploads in the pipeline")
        api.process.terminate()
        for thread in uploads:
            thread.join(timeout=STOP_S)
        assert not any(thread.is_alive() for thread in uploads), "an upload still waits after the stop"
        # Stopped by a signal, as Ctrl-C: docs/commands.md's 130, the same as with nobody waiting.
        assert api.process.wait(timeout=STOP_S) == exits.INTERRUPTED
    finally:
        client.close()
        api.stop()
        redis.stop()
    assert sorted(answer.status_code for answer in answers) == [202, 202]
    for answer in answers:
        body = answer.json()
        assert body["status_url"] == answer.headers["Location"] and body["job_id"] in body["status_url"]
