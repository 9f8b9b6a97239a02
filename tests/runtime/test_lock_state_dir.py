"""Issue 22 item 15: the stack lock (STATE_DIR/stack.lock) never writes through a symlink and is
never opened in a state directory that another user could write to; each refusal is one line."""

from __future__ import annotations

import os
from pathlib import Path

from faces.ops import exits
from tests.images import photo_variants
from tests.pipeline import faces_cli

# Nothing listens there: a command that got past the lock would fail to connect instead.
UNREACHABLE = "redis://127.0.0.1:1/0"
VICTIM_TEXT = "a file of ours that no faces command may change\n"


def run_once(tmp_path: Path, state: Path):
    photos = tmp_path / "photos"
    photo_variants(photos, 1)
    return faces_cli(
        "run",
        str(photos),
        "--state-dir",
        str(state),
        "--redis-url",
        UNREACHABLE,
        "--storage",
        str(tmp_path / "out"),
        timeout=120,
    )


def error_line(done) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_a_stack_lock_that_is_a_symlink_is_refused_and_its_target_left_unchanged(tmp_path):
    """`faces run` finding stack.lock as a symlink to another file exits 1 with one line naming the
    link and the fix; the link's target keeps its bytes (before: truncated, our pid written in)."""
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text(VICTIM_TEXT)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "stack.lock").symlink_to(victim)

    done = run_once(tmp_path, state)

    assert victim.read_text() == VICTIM_TEXT
    assert done.returncode == exits.FAILED
    assert error_line(done) == f"error: refusing {state / 'stack.lock'}: it is a symlink; remove it"
    assert (state / "stack.lock").is_symlink()  # left for the user to look at


def test_a_state_dir_others_may_write_is_refused_before_the_lock_is_created(tmp_path):
    """A state directory writable by group or others (where anyone could plant that symlink) is
    refused with one line naming it and the fix, and nothing is created in it."""
    state = tmp_path / "shared-state"
    state.mkdir()
    os.chmod(state, 0o777)

    done = run_once(tmp_path, state)

    assert done.returncode == exits.FAILED
    assert error_line(done) == (
        f"error: refusing the state directory {state}: it is writable by group "
        f"or others (mode 0777); chmod 700 it, or remove it if it is not yours"
    )
    assert list(state.iterdir()) == []


def test_a_stack_lock_that_is_our_own_file_is_taken_and_holds_our_pid_only(tmp_path):
    """The ordinary case still works: an old stack.lock with a longer stale pid is reused, and once
    the command got past the lock the file holds its pid alone (then the unreachable Redis is the
    one line)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "stack.lock").write_text("123456789012345\n")

    done = run_once(tmp_path, state)

    assert done.returncode == exits.FAILED
    assert "127.0.0.1:1" in error_line(done)
    pid = (state / "stack.lock").read_text()
    assert pid.endswith("\n") and pid.strip().isdigit() and pid.strip() != "123456789012345"


def test_a_state_dir_that_is_a_symlink_is_refused_and_nothing_written_through_it(tmp_path):
    """--state-dir naming a symlink (someone planted /tmp/x -> a private folder of ours) is
    refused with one line, and no stack.lock appears in the link's target. Before (review),
    the state dir was resolved before the check, so the check saw the target and passed."""
    target = tmp_path / "ours"
    target.mkdir(mode=0o700)
    state = tmp_path / "planted"
    state.symlink_to(target)

    done = run_once(tmp_path, state)

    assert done.returncode == exits.FAILED
    assert error_line(done) == (
        f"error: refusing the state directory {state}: it is a symlink; chmod 700 it, or remove it if it is not yours"
    )
    assert list(target.iterdir()) == []
