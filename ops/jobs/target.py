"""Which Redis a command uses: the given URL, an embedded server already running for this state
directory (e.g. under `faces up`), or a new embedded server owned by this command; and the lock
that lets only one stack (`faces run`, `faces up`, a replay with its own workers) use a state
directory at a time."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import redis

from faces.errors import FacesError
from faces.ops.settings import AppSettings
from faces.streams.connection import connect
from faces.streams.embedded import STATE_DIR, EmbeddedRedis, holds_data, make_private_dir, running_url

LOCK_FILE = "stack.lock"


class StackAlreadyRunning(FacesError, RuntimeError):
    """Another `faces run` / `faces up` (or a replay running its own workers) holds this state
    directory.

    Cause: a second stack on one state directory would start a second set of workers (and,
    without --redis-url, could stop the Redis the first one uses). Remedy: stop the other one
    (its pid is in the message), feed it with `faces submit` instead, or give this one its own
    --state-dir.
    """


class UnsafeLockFile(FacesError, RuntimeError):
    """STATE_DIR/stack.lock is a symlink, or not a regular file of ours.

    Cause: someone placed it there (a symlink would make us write our pid into its target).
    Remedy: remove the file named in the message; the next command creates it again.
    """


class NoRedisRunning(FacesError, RuntimeError):
    """A command that only attaches to Redis found none.

    Cause: no --redis-url / FACES_REDIS_URL was given and no embedded server is running for the
    state directory. Remedy: start the stack with `faces up --state-dir DIR` first, or pass
    --redis-url.
    """


@contextlib.contextmanager
def stack_lock(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on STATE_DIR/stack.lock until the block ends, or raise
    StackAlreadyRunning at once. The kernel drops the lock when the process dies, however it
    dies; the descriptor is not inherited by the workers or redis-server."""
    state_dir = Path(state_dir)
    # Checked before anything is opened in it: in a directory others may write, stack.lock
    # could be their symlink, and the pid written below would overwrite its target.
    # absolute(), not resolve(): a state dir that is itself a symlink (planted where we would
    # create it) must be seen, and refused, as one.
    make_private_dir(state_dir.absolute(), exact=False, what=STATE_DIR)
    fd = _open_lock_file(state_dir / LOCK_FILE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StackAlreadyRunning(
                f"another faces stack (pid {holder}) is already running on state dir {state_dir}; "
                f"stop it, feed it with `faces submit`, or use another --state-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _open_lock_file(path: Path) -> int:
    """A descriptor on `path`, a regular file of ours, created if missing; never through a
    symlink (O_NOFOLLOW) and never truncated here (the pid is written once the lock is held)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise UnsafeLockFile(f"refusing {path}: it is a symlink; remove it") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        raise UnsafeLockFile(f"refusing {path}: not a regular file of uid {os.geteuid()}; remove it")
    return fd


@contextlib.contextmanager
def redis_target(app: AppSettings, *, stack: bool = False) -> Iterator[tuple[str, redis.Redis, EmbeddedRedis | None]]:
    """(url, client, owned embedded server or None); the owned server stops on exit.

    With `stack`, first take the state directory's `stack_lock` for the whole block (what
    `faces run` and `faces up` do)."""
    with contextlib.ExitStack() as held:
        if stack:
            held.enter_context(stack_lock(app.state_dir))
        if app.redis_url:
            yield app.redis_url, connect(app.redis_url), None
            return
        url = running_url(app.state_dir, app.runtime_dir)
        if url:
            yield url, connect(url), None
            return
        server = held.enter_context(EmbeddedRedis(app.state_dir, runtime_dir=app.runtime_dir))
        yield server.url, connect(server.url), server


@contextlib.contextmanager
def attached(app: AppSettings) -> Iterator[tuple[str, redis.Redis]]:
    """(url, client) of a Redis that is already running: what `status`, `submit`, `dlq`,
    `trim`, `purge` use. Never starts one: an embedded server started by such a command would
    hold work that no worker will ever process. NoRedisRunning names the fix."""
    url = attach_url(app)
    client = connect(url)
    try:
        yield url, client
    finally:
        client.close()


@contextlib.contextmanager
def replay_target(app: AppSettings) -> Iterator[tuple[str, redis.Redis, bool]]:
    """(url, client, owns the stack) for `faces replay`: a running Redis, as `attached`; or,
    when none runs but an embedded server left its data in the state directory (after `faces
    run`), that server started again under the stack lock, as `faces run` does: owning the
    stack, the replay must also run the workers, and stops it all on exit. NoRedisRunning when
    there is neither: a new, empty server would hold no history to replay."""
    if app.redis_url or running_url(app.state_dir, app.runtime_dir) or not holds_data(app.state_dir):
        with attached(app) as (url, client):
            yield url, client, False
        return
    with redis_target(app, stack=True) as (url, client, _server):
        try:
            yield url, client, True
        finally:
            client.close()


def attach_url(app: AppSettings) -> str:
    """The Redis URL for a process that must never own Redis (a `faces worker`): the given one,
    or the embedded server already running for the state directory; else NoRedisRunning."""
    if app.redis_url:
        return app.redis_url
    url = running_url(app.state_dir, app.runtime_dir)
    if url is None:
        raise NoRedisRunning(
            f"no pipeline is running for state dir {app.state_dir}: start one with "
            f"`faces up --state-dir {app.state_dir}` (in another terminal), or pass --redis-url"
        )
    return url


@contextlib.contextmanager
def data_target(app: AppSettings) -> Iterator[tuple[str, redis.Redis]]:
    """(url, client) for commands that only read or change what Redis stores (`faces people`,
    `faces search`): the running Redis, or else the embedded server started on the state dir
    for the block, under the stack lock as `faces run` takes it. Unlike a pipeline command, no
    worker is needed: what they change is kept by the server's own files in the state dir."""
    stack = not (app.redis_url or running_url(app.state_dir, app.runtime_dir))
    with redis_target(app, stack=stack) as (url, client, _server):
        try:
            yield url, client
        finally:
            client.close()
