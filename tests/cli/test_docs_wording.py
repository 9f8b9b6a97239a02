"""Issue 26 item 14, the wording a newcomer reads: counts in the singular when there is one
("1 image", "1 other file skipped", "1 dead letter"), `faces health --stage watch` naming the
command that starts a watcher, `faces up` on a terminal showing its own lines without log lines
between them, and `faces dlq show` giving times as ISO 8601 instead of epoch floats.

One real `faces up` on a pseudo-terminal for the module (its workers, its embedded Redis);
a separate real `faces run` for the run summary."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from faces.producer.files import job_for
from faces.streams.connection import connect
from tests.dead_letters import plant_dead_letter
from tests.images import DATA
from tests.pipeline import REPO, faces_cli
from tests.waiting import wait_until

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Terminal:
    """A process whose stdin, stdout and stderr are a pseudo-terminal; what it wrote so far."""

    process: subprocess.Popen
    master: int
    chunks: list[bytes] = field(default_factory=list)

    @property
    def text(self) -> str:
        return ANSI.sub("", b"".join(self.chunks).decode(errors="replace")).replace("\r", "")

    def read_all(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # the other side closed
                return
            if not data:
                return
            self.chunks.append(data)


def on_terminal(args: list[str], cwd: Path) -> Terminal:
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("FACES_REDIS_URL", "REDIS_URL", "FACES_LOG_LEVEL")}
    process = subprocess.Popen(
        [sys.executable, "-m", "faces", *args],
        cwd=cwd,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    terminal = Terminal(process, master)
    threading.Thread(target=terminal.read_all, daemon=True).start()
    return terminal


@dataclass
class Up:
    terminal: Terminal
    folder: Path
    common: list[str]
    ready_text: str


@pytest.fixture(scope="module")
def up(tmp_path_factory) -> Iterator[Up]:
    """`faces up` on a terminal, until its ready line."""
    folder = tmp_path_factory.mktemp("wording")
    common = [
        "--state-dir",
        str(folder / "state"),
        "--storage",
        str(folder / "storage"),
        "--output",
        str(folder / "output"),
    ]
    terminal = on_terminal(["up", *common], REPO)
    try:
        wait_until(
            lambda: "ready:" in terminal.text or terminal.process.poll() is not None,
            timeout_s=180,
            interval_s=0.2,
            what="faces up to say it is ready",
        )
        assert "ready:" in terminal.text, terminal.text
        yield Up(terminal, folder, common, terminal.text)
    finally:
        os.killpg(terminal.process.pid, signal.SIGINT)
        try:
            terminal.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(terminal.process.pid, signal.SIGKILL)
            terminal.process.wait()
        os.close(terminal.master)


def test_up_on_a_terminal_shows_its_own_lines_without_log_lines(up):
    """On a terminal, `faces up` prints `stack up ...` then `ready: ...` with no info log line
    (embedded Redis started, workers started) between or around them."""
    lines = [line for line in up.ready_text.splitlines() if line.strip()]
    assert lines[0].startswith("stack up on "), lines
    assert lines[-1].startswith("ready: 5 workers"), lines
    assert len(lines) == 2, lines


def test_submit_counts_one_image_and_one_other_file_in_the_singular(up, tmp_path):
    """`faces submit` of a folder with one photo and one text file says
    `submitted 1 image; 1 other file skipped`."""
    (tmp_path / "astronaut.jpg").write_bytes((DATA / "astronaut.jpg").read_bytes())
    (tmp_path / "notes.txt").write_text("not a photo")
    done = faces_cli("submit", str(tmp_path), "--wait", *up.common[:4])
    assert done.returncode == 0, done.stderr
    assert "submitted 1 image; 1 other file skipped" in done.stderr


def test_health_of_the_watch_stage_names_the_watch_commands(up):
    """With no watcher running, `faces health --stage watch` fails naming `faces watch DIR` and
    `faces up --watch DIR`, not `faces worker STAGE` (which cannot start a watcher)."""
    done = faces_cli("health", "--stage", "watch", *up.common[:2])
    assert done.returncode == 1
    assert "`faces watch DIR`, or `faces up --watch DIR`" in done.stderr
    assert "faces worker" not in done.stderr


def test_one_dead_letter_is_counted_in_the_singular_and_shown_with_iso_times(up):
    """`faces dlq list` says `1 dead letter`; `faces dlq show` gives the letter's time and its
    event's submission time as ISO 8601 UTC; `faces dlq drop` says `1 dead letter dropped`."""
    job = job_for(str(DATA / "astronaut.jpg"), (DATA / "astronaut.jpg").read_bytes())
    client = connect(f"unix://{up.folder / 'state' / 'redis.sock'}")
    try:
        letter_id = plant_dead_letter(client, job)
    finally:
        client.close()
    state = up.common[:2]
    listed = faces_cli("dlq", "list", *state)
    assert listed.returncode == 0 and listed.stderr.strip().splitlines()[-1] == "1 dead letter"
    shown = faces_cli("dlq", "show", letter_id, *state)
    assert shown.returncode == 0, shown.stderr
    letter = json.loads(shown.stdout)
    assert ISO_UTC.fullmatch(letter["at"]), letter["at"]
    assert ISO_UTC.fullmatch(letter["event"]["submitted_at"]), letter["event"]
    dropped = faces_cli("dlq", "drop", letter_id, *state)
    assert dropped.returncode == 0 and dropped.stdout.strip() == "1 dead letter dropped"


def test_run_summary_counts_in_the_singular(tmp_path):
    """`faces run` over one photo with one face and one other file says
    `1 image: 1 ok, ...; 1 face; 1 other file skipped`."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DATA / "astronaut.jpg", photos)
    (photos / "notes.txt").write_text("not a photo")
    done = faces_cli(
        "run",
        str(photos),
        "--state-dir",
        str(tmp_path / "state"),
        "--storage",
        str(tmp_path / "storage"),
        "--no-visualize",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 image: 1 ok, 0 error, 0 dead-lettered; 1 face; 1 other file skipped; ")
