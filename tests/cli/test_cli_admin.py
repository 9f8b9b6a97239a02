"""`faces visualize`, `result`, `replay`, `trim`, `purge`, `dlq ...` through the real CLI
(subprocesses) against a real redis-server: every failure is one `error:` line with the exit
code the README promises, and nothing reports a success that did not happen.

No stage workers run here: replays are made to fail before they would start them, or find
consumers attached. Independent commands run side by side to keep the module fast."""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from faces.ops import exits
from faces.producer import replay
from faces.producer.files import job_for, new_job
from faces.schemas.result import build_result, dumps
from faces.streams import deadletters, heartbeat, names, publishing
from tests.consumer_threads import FAST, publish, start, stop
from tests.dead_letters import plant_dead_letter
from tests.images import DATA
from tests.pipeline import faces_cli
from tests.stages import PickyStage
from tests.waiting import wait_until


def faces_each(*commands: list[str]) -> list[subprocess.CompletedProcess]:
    """Run independent `faces` commands at the same time; their results in order."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: faces_cli(*args, timeout=60), commands))


def no_traceback(run: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in run.stdout + run.stderr, run.stdout + run.stderr


def error_line(run: subprocess.CompletedProcess, code: int) -> str:
    """The one `error: ...` line of a failed command that exited with `code`."""
    no_traceback(run)
    assert run.returncode == code, (run.returncode, run.stdout, run.stderr)
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    return lines[0]


def ok(run: subprocess.CompletedProcess, code: int = exits.OK) -> str:
    no_traceback(run)
    assert run.returncode == code, (run.returncode, run.stdout, run.stderr)
    return run.stdout


def stored(client, job: dict, **changes) -> dict:
    """Keep an ok result of `job` in Redis, as a sink does; the result."""
    result = {**build_result(job), **changes}
    client.set(names.result_key(job["image_id"]), dumps(result))
    return result


def submitted(client, path: Path) -> dict:
    """A submission of the file at `path` in the images stream's history (no worker runs)."""
    job = job_for(str(path), path.read_bytes())
    publishing.publish_image(client, job, path.read_bytes())
    return job


def attach_fake_consumers(client) -> None:
    """Every stage with a fresh worker heartbeat: replay then starts no workers."""
    for stage in names.STAGE_ORDER:
        heartbeat.beat(client, stage, "attached", {})


# -- dead letters -------------------------------------------------------------------------


def test_dlq_names_unknown_ids_in_one_line_and_changes_nothing(redis_url, redis_client):
    [job] = publish(redis_client, 1)
    real = plant_dead_letter(redis_client, job, deliveries=1, with_payload=False)
    url = ["--redis-url", redis_url]
    show, retry, drop, drop_mixed, no_ids = faces_each(
        ["dlq", "show", "nonexistent", *url],
        ["dlq", "retry", "1-1", *url],
        ["dlq", "drop", "nonexistent", *url],
        ["dlq", "drop", real, "999-0", *url],
        ["dlq", "drop", *url],
    )
    assert error_line(show, exits.FAILED).startswith("error: no dead letter nonexistent")
    assert "no dead letter 1-1" in error_line(retry, exits.FAILED)
    assert "no dead letter nonexistent" in error_line(drop, exits.FAILED)
    assert "no dead letter 999-0" in error_line(drop_mixed, exits.FAILED)
    assert "--all" in error_line(no_ids, exits.USAGE)
    assert deadletters.count(redis_client) == 1  # a command naming an unknown id drops none


def test_dlq_shows_the_deliveries_its_message_speaks_of(redis_url, redis_client):
    jobs = publish(redis_client, 2)
    consumer, thread = start(redis_client, PickyStage(poison_image=jobs[0]["image_id"]))
    wait_until(lambda: deadletters.count(redis_client) == 1, what="a dead letter")
    stop(consumer, thread)
    [letter] = deadletters.list_all(redis_client)
    assert letter.message.startswith(f"gave up after {FAST.max_deliveries} deliveries")
    listed, as_json, shown = faces_each(
        ["dlq", "list", "--redis-url", redis_url],
        ["dlq", "list", "--json", "--redis-url", redis_url],
        ["dlq", "show", letter.id, "--redis-url", redis_url],
    )
    assert f" x{FAST.max_deliveries} " in ok(listed)
    assert json.loads(ok(as_json))[0]["deliveries"] == FAST.max_deliveries
    assert json.loads(ok(shown))["deliveries"] == FAST.max_deliveries


def test_admin_commands_need_a_running_pipeline_and_say_how(tmp_path, redis_server):
    state = tmp_path / "state"
    auth_refused = redis_server.url.replace("unix://", "unix://nobody:wrong@")
    dlq, replayed, trimmed, refused = faces_each(
        ["dlq", "list", "--state-dir", str(state)],
        ["replay", "--state-dir", str(state)],
        ["trim", "--redis-url", "redis://127.0.0.1:1/0"],
        ["purge", "--yes", "--redis-url", auth_refused],
    )
    for run in (dlq, replayed):
        assert "`faces up --state-dir" in error_line(run, exits.FAILED)
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in error_line(trimmed, exits.FAILED)
    line = error_line(refused, exits.FAILED)
    assert "username-password" in line and "wrong" not in line  # the password is not shown
    assert not state.exists()  # no embedded Redis was started there


# -- replay -------------------------------------------------------------------------------


def test_replay_refuses_bad_values_before_attaching(tmp_path):
    state = ["--state-dir", str(tmp_path / "state")]  # no pipeline: a check that ran later exits 1
    since, until, short, stage = faces_each(
        ["replay", "--since", "yesterday", *state],
        ["replay", "--until", "soon", *state],
        ["replay", "--image", "370adb", *state],
        ["replay", "--from-stage", "bogus", *state],
    )
    for run, option in ((since, "--since 'yesterday'"), (until, "--until 'soon'")):
        line = error_line(run, exits.USAGE)
        assert option in line and "2026-11-27T10:00" in line and "1700000000000-0" in line
    assert "370adb is too short: give at least 8 hex digits" in error_line(short, exits.USAGE)
    assert "detect" in error_line(stage, exits.USAGE) and "agegender" in stage.stderr


def test_replay_of_images_not_in_history_or_an_ambiguous_prefix_fails(tmp_path, redis_url, redis_client):
    for name in ("a", "b"):  # two images whose sha256 share their first 10 hex digits
        job = new_job(f"/photos/{name}.jpg", "abcdef1234" + name * 54, 3)
        publishing.publish_image(redis_client, job, b"abc")
    unknown, ambiguous = faces_each(
        ["replay", "--image", "nosuchimage", "--redis-url", redis_url],
        ["replay", "--image", "abcdef1234", "--redis-url", redis_url],
    )
    assert error_line(unknown, exits.FAILED).startswith("error: image nosuchimage not found")
    line = error_line(ambiguous, exits.USAGE)
    assert "abcdef1234 is ambiguous" in line and "a-abcdef12" in line and "b-abcdef12" in line


def test_replay_names_every_image_it_could_not_replay(tmp_path, redis_url, redis_client):
    photo = tmp_path / "gone.jpg"
    shutil.copy(DATA / "astronaut.jpg", photo)
    job = submitted(redis_client, photo)
    photo.unlink()
    attach_fake_consumers(redis_client)
    out = ok(faces_cli("replay", "--redis-url", redis_url, "--storage", str(tmp_path / "storage")), exits.SOME_ERRORS)
    assert "1 not replayable" in out
    assert f"  {job['image_id']}: cannot read {photo}" in out


def test_replay_from_a_later_stage_keeps_the_earlier_stages_timings(tmp_path, redis_client):
    job = submitted(redis_client, DATA / "astronaut.jpg")
    stored(
        redis_client,
        job,
        timings_ms={"detect": 12.5, "landmarks": 3.0, "landmarks_batch_share": 1.5, "agegender_batch_share": 40.0},
    )
    [from_agegender] = replay.plan(redis_client, from_stage="agegender").jobs
    [from_landmarks] = replay.plan(redis_client, from_stage="landmarks").jobs
    [from_detect] = replay.plan(redis_client, from_stage="detect").jobs
    # The stages re-run start from nothing: they add their time to what the job carries.
    assert from_agegender["timings_ms"] == {"detect": 12.5, "landmarks": 3.0, "landmarks_batch_share": 1.5}
    assert from_landmarks["timings_ms"] == {"detect": 12.5}
    assert from_detect["timings_ms"] == {}


# -- visualize ----------------------------------------------------------------------------


def test_visualize_names_every_photo_it_could_not_read(tmp_path):
    storage = tmp_path / "storage"
    storage.mkdir()
    drawable = job_for(str(DATA / "astronaut.jpg"), (DATA / "astronaut.jpg").read_bytes())
    gone = job_for(str(tmp_path / "gone.jpg"), b"bytes of a deleted photo")
    for job in (drawable, gone):
        (storage / f"{job['image_id']}.json").write_text(dumps(build_result(job)))
    drawn, missing = faces_each(
        ["visualize", str(storage), "--output", str(tmp_path / "out")], ["visualize", str(tmp_path / "nope")]
    )
    out = ok(drawn, exits.SOME_ERRORS)
    assert "1 picture in" in out and "1 result could not be drawn" in out
    assert f"  cannot read {tmp_path / 'gone.jpg'} (image {gone['image_id']}): No such file or directory" in out
    assert (tmp_path / "out" / f"{drawable['image_id']}.jpg").exists()
    assert error_line(missing, exits.FAILED) == (
        f"error: {tmp_path / 'nope'} is not a folder: give the --storage folder of a `faces run` or `faces up`"
    )


# -- result -------------------------------------------------------------------------------


def test_result_by_path_id_or_prefix_from_redis_else_from_storage(tmp_path, redis_url, redis_client):
    photo = tmp_path / "me.jpg"
    shutil.copy(DATA / "astronaut.jpg", photo)
    job = job_for(str(photo), photo.read_bytes())
    in_redis = stored(redis_client, job, processed_at="in redis")
    storage = tmp_path / "storage"
    storage.mkdir()
    (storage / f"{job['image_id']}.json").write_text(dumps({**in_redis, "processed_at": "on disk"}))
    sha = job["image"]["sha256"]
    url = ["--redis-url", redis_url, "--storage", str(storage)]
    stopped = ["--state-dir", str(tmp_path / "state"), "--storage", str(storage)]  # no pipeline
    by_path, by_prefix, after_stop, unknown, short = faces_each(
        ["result", str(photo), *url],
        ["result", sha[:12], *url],
        ["result", job["image_id"], *stopped],
        ["result", "0123456789ab", *url],
        ["result", sha[:7], *stopped],
    )
    assert json.loads(ok(by_path)) == in_redis  # Redis first: it holds the newest copy
    assert json.loads(ok(by_prefix))["processed_at"] == "in redis"
    assert json.loads(ok(after_stop))["processed_at"] == "on disk"
    assert error_line(unknown, exits.FAILED).startswith("error: image 0123456789ab not found")
    assert "give at least 8 hex digits" in error_line(short, exits.USAGE)


def test_result_refuses_a_prefix_of_two_images(tmp_path):
    storage = tmp_path / "storage"
    storage.mkdir()
    for name in ("a", "b"):
        job = new_job(f"/photos/{name}.jpg", "abcdef1234" + name * 54, 3)
        (storage / f"{job['image_id']}.json").write_text(dumps(build_result(job)))
    run = faces_cli("result", "abcdef12", "--storage", str(storage), "--state-dir", str(tmp_path / "state"))
    line = error_line(run, exits.USAGE)
    assert "abcdef12 is ambiguous: it matches 2 images (a-abcdef12, b-abcdef12)" in line


def test_every_admin_option_has_help():
    commands = [
        ["visualize"],
        ["result"],
        ["replay"],
        ["trim"],
        ["recreate-group"],
        ["purge"],
        ["dlq", "list"],
        ["dlq", "show"],
        ["dlq", "retry"],
        ["dlq", "drop"],
    ]
    from typer.main import get_command

    from faces.ops.cli import app

    root = get_command(app)
    for path in commands:
        command = root
        for name in path:
            command = command.commands[name]
        for param in command.params:
            assert getattr(param, "help", None) or param.name == "help", (path, param.name)
    replay_help = faces_cli("replay", "--help", env={"COLUMNS": "200"}).stdout
    assert "detect|landmarks|agegender|embed|sink" in replay_help
