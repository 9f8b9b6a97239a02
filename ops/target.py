"""Which Redis a command uses: the given URL, an embedded server already running for this state
directory (e.g. under `faces up`), or a new embedded server owned by this command; and the lock
that lets only one stack (`faces run`, `faces up`, a replay with its own workers) use a state
directory at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

import redis

from faces.ops.settings import AppSettings
from faces.streams.connection import connect
from faces.streams.embedded import EmbeddedRedis, running_url

LOCK_FILE = "stack.lock"


class StackAlreadyRunning(RuntimeError):
    """Another `faces run` / `faces up` (or a replay running its own workers) holds this state
    directory.

    Cause: a second stack on one state directory would start a second set of workers (and,
    without --redis-url, could stop the Redis the first one uses). Remedy: stop the other one
    (its pid is in the message), feed it with `faces submit` instead, or give this one its own
    --state-dir.
    """


class NoRedisRunning(RuntimeError):
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
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StackAlreadyRunning(
                f"another faces stack (pid {holder}) is already running on state dir {state_dir}; "
                f"stop it, feed it with `faces submit`, or use another --state-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def redis_target(app: AppSettings, *, stack: bool = False
                 ) -> Iterator[tuple[str, redis.Redis, EmbeddedRedis | None]]:
    """(url, client, owned embedded server or None); the owned server stops on exit.

    With `stack`, first take the state directory's `stack_lock` for the whole block (what
    `faces run` and `faces up` do)."""
    with contextlib.ExitStack() as held:
        if stack:
            held.enter_context(stack_lock(app.state_dir))
        if app.redis_url:
            yield app.redis_url, connect(app.redis_url), None
            return
        url = running_url(app.state_dir)
        if url:
            yield url, connect(url), None
            return
        server = held.enter_context(EmbeddedRedis(app.state_dir))
        yield server.url, connect(server.url), server


@contextlib.contextmanager
def attached(app: AppSettings) -> Iterator[tuple[str, redis.Redis]]:
    """(url, client) of a Redis that is already running: what `status`, `submit`, `dlq`,
    `replay`, `trim`, `purge` use. Never starts one: an embedded server started by such a
    command would hold work that no worker will ever process. NoRedisRunning names the fix."""
    url = attach_url(app)
    client = connect(url)
    try:
        yield url, client
    finally:
        client.close()


def attach_url(app: AppSettings) -> str:
    """The Redis URL for a process that must never own Redis (a `faces worker`): the given one,
    or the embedded server already running for the state directory; else NoRedisRunning."""
    if app.redis_url:
        return app.redis_url
    url = running_url(app.state_dir)
    if url is None:
        raise NoRedisRunning(
            f"no pipeline is running for state dir {app.state_dir}: start one with "
            f"`faces up --state-dir {app.state_dir}` (in another terminal), or pass --redis-url")
    return url
