"""The drop-folder watcher: publish each new image dropped into a folder exactly once.

How it decides:
- a file is read only once it is complete: its size and mtime unchanged for `settle_s`;
- hidden and temporary files, and non-image names, are ignored (logged once each);
- only regular files are read: links, FIFOs, devices and sockets are ignored when listed, and
  the file is opened without following a link anywhere below the folder (each folder on its
  path opened relative to the one before, `producer.beneath`) and without waiting on a FIFO,
  then checked on the opened descriptor: a regular file, and the very file listed (device and
  inode). So something swapped in while the file settled or waited for room is refused too,
  and nothing outside the folder is ever read. Size and mtime remembered are the descriptor's;
- a read that fails (permissions, I/O) is retried with backoff while the file is there;
- the same bytes under any name are analysed once within the dedupe window (sha256 dedupe in
  Redis, `streams.dedupe`), unless `force`. An empty or too-large file is not deduped: it can
  only end with an error result, and each such file gets its own, under its own name;
- files already handled are remembered in Redis by (path, size, mtime), so a restart publishes
  what arrived while it was down without reading the old files again;
- when a directory's mtime changes (entries added, removed or renamed) only the names new to it
  are stat'ed; between changes only the files still settling are. A file rewritten in place
  under a name already handled is not published again (drop a new name, or use `faces submit`).
  A folder is listed on every pass until its mtime has held for `RECENT_CHANGE_S` on this
  machine's clock: its tick is too coarse to tell a listing from a file created in the same
  instant;
- Redis trouble that passes (connection lost, OOM, READONLY, LOADING, MISCONF) is waited out
  with backoff: the file in hand is published once Redis answers, exactly once;
- `while_waiting` runs during every wait (backpressure, Redis), e.g. to supervise workers.

Memory bound: the folder's Redis hash (`names.watch_key`) and the maps in this process hold at
most one entry per file currently in the folder: a file that leaves the listing is forgotten
(HDEL), and so are files removed while no watcher ran (at the first scan after a start).
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TypeVar

import redis
import structlog

from faces import settings as defaults
from faces.producer import beneath
from faces.producer.files import DEFAULT_MAX_IMAGE_BYTES, IMAGE_SUFFIXES, NotARegularFile, read_job
from faces.streams import dedupe, heartbeat, names, publishing

log = structlog.get_logger(__name__)

T = TypeVar("T")

TEMP_SUFFIXES = frozenset({".tmp", ".part", ".partial", ".crdownload", ".download", ".swp", ".lock"})


def is_candidate_name(name: str) -> bool:
    """Not hidden, not a temp/partial file, and an image suffix."""
    if name.startswith(".") or name.endswith("~") or name.startswith("~$"):
        return False
    suffix = os.path.splitext(name)[1].lower()
    return suffix not in TEMP_SUFFIXES and suffix in IMAGE_SUFFIXES


WATCH_STAGE = "watch"  # the watcher's name in heartbeats and `faces health --stage`


class _Listed(NamedTuple):
    """What stat said of a listed file: the size and mtime that must hold while it settles, and
    which file it is, checked again on the descriptor read (a file swapped in is not read)."""

    size: int
    mtime_ns: int
    file_id: beneath.FileId


@dataclass(frozen=True)
class _Retry:
    listed: _Listed  # the signature that settled: a changed file settles again instead
    failures: int
    due: float  # monotonic time of the next attempt


@dataclass
class Watcher:
    client: redis.Redis
    folder: Path
    settle_s: float = defaults.SETTLE_S
    poll_s: float = defaults.WATCH_POLL_S
    force: bool = False
    high_water: int = defaults.HIGH_WATER
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    dedupe_window_s: int = defaults.DEDUPE_WINDOW_S
    while_waiting: Callable[[], None] = lambda: None  # runs during waits, e.g. pool.supervise
    read_retry_min_s: float = defaults.READ_RETRY_MIN_S
    read_retry_max_s: float = defaults.READ_RETRY_MAX_S
    published: int = 0
    duplicates: int = 0
    read_failures: int = 0
    refused: int = 0  # not regular files when opened (a link or FIFO swapped in while settling)
    folder_id: str = field(init=False, default="")  # names the folder's memory in Redis
    # dir -> (its mtime, when this process first saw that mtime, whether a listing made once it
    # had held RECENT_CHANGE_S stands for it: only then is the folder skipped while it holds)
    _dir_mtimes: dict[str, tuple[int, float, bool]] = field(default_factory=dict)
    _dir_names: dict[str, set[str]] = field(default_factory=dict)
    _settling: dict[str, tuple[_Listed, float]] = field(default_factory=dict)  # path -> listed, since
    _retries: dict[str, _Retry] = field(default_factory=dict)
    _done: dict[str, str] = field(default_factory=dict)  # path -> "size:mtime_ns"
    _ignored: set[str] = field(default_factory=set)
    _pruned: bool = False
    _heartbeat: heartbeat.Heartbeat = field(init=False)

    def __post_init__(self) -> None:
        if self.dedupe_window_s < 1:
            raise ValueError(f"dedupe_window_s must be at least 1, got {self.dedupe_window_s}")
        self.folder = self.folder.resolve()
        self.folder_id = hashlib.sha256(str(self.folder).encode()).hexdigest()[:16]
        self._key = names.watch_key(self.folder_id)
        self._heartbeat = heartbeat.Heartbeat(
            self.client, WATCH_STAGE, f"{WATCH_STAGE}-{socket.gethostname()}-{os.getpid()}"
        )
        self._done = self._redis("load", lambda: dedupe.remembered_files(self.client, self._key))

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Poll until `should_stop()`; every file that settles is published once. A heartbeat
        (stage `watch`) says the loop is turning: `faces health` reads it."""
        log.info("watch.started", folder=str(self.folder), remembered=len(self._done))
        try:
            while not should_stop():
                self.turn()
                time.sleep(self.poll_s)
        finally:  # also on Ctrl-C / SIGTERM, which arrive as KeyboardInterrupt
            self.stop_beating()

    def turn(self) -> int:
        """One turn of the loop: a pass (`poll_once`) and the heartbeat when due. What `run`
        repeats, and what a caller with its own loop (`faces up --watch`) calls instead, so
        that `faces health --stage watch` sees that watcher too. Returns how many published."""
        published = self.poll_once()
        self._beat_if_due()
        return published

    def stop_beating(self) -> None:
        """Remove the heartbeat: the watcher stops (a caller of `turn` calls it on its way out)."""
        try:
            self._heartbeat.forget()
        except redis.RedisError:
            pass  # Redis is gone: readers drop the heartbeat once it is old

    def _beat_if_due(self) -> None:
        """The heartbeat, from the loop and while backpressure holds a file back (a full
        pipeline is not a stuck watcher). Skipped while Redis is unreachable: that wait is
        the one reported then."""
        try:
            self._heartbeat.beat_if_due(lambda: {"processed": self.published})
        except redis.RedisError as exc:
            if not publishing.is_transient(exc):
                raise

    def _waiting(self) -> None:
        """What runs during every wait: the heartbeat, then the caller's `while_waiting`."""
        self._beat_if_due()
        self.while_waiting()

    def poll_once(self) -> int:
        """One pass: look for new files, publish those that settled. Returns how many published."""
        self._scan_changed_dirs()
        now = time.monotonic()
        published = 0
        for path, (listed, since) in list(self._settling.items()):
            current = _signature(path)
            if current is None:
                del self._settling[path]  # gone before it settled
            elif current != listed:
                self._settling[path] = (current, now)  # still being written, or replaced
            elif now - since >= self.settle_s:
                del self._settling[path]
                published += self._publish(path, listed)
        for path, retry in list(self._retries.items()):
            if now >= retry.due:
                del self._retries[path]
                published += self._publish(path, retry.listed, retry.failures)
        return published

    # -- listing -----------------------------------------------------------------------------
    def _scan_changed_dirs(self) -> None:
        visited: set[str] = set()
        gone: list[str] = []
        complete = True  # every folder listed: only then may an unlisted one count as gone

        def unreadable(_exc: OSError) -> None:
            nonlocal complete
            complete = False

        for dirpath, dirnames, filenames in os.walk(self.folder, onerror=unreadable, followlinks=False):
            # Hidden folders are skipped, like hidden files.
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            visited.add(dirpath)
            try:
                mtime = os.stat(dirpath).st_mtime_ns
            except FileNotFoundError:
                continue
            if not self._must_list(dirpath, mtime):
                continue
            listed = set(filenames)
            before = self._dir_names.get(dirpath, set())
            for name in sorted(listed - before):
                self._consider(os.path.join(dirpath, name))
            gone.extend(os.path.join(dirpath, name) for name in before - listed)
            self._dir_names[dirpath] = listed
        if complete:
            for dirpath in set(self._dir_names) - visited:  # removed, renamed or hidden folders
                gone.extend(os.path.join(dirpath, name) for name in self._dir_names.pop(dirpath))
                self._dir_mtimes.pop(dirpath, None)
            if not self._pruned:
                # Files handled before a restart and removed while no watcher ran.
                present = {os.path.join(d, n) for d, listed in self._dir_names.items() for n in listed}
                gone.extend(path for path in self._done if path not in present)
                self._pruned = True
        if gone:
            self._forget(gone)

    def _must_list(self, dirpath: str, mtime: int) -> bool:
        """False when this folder's last listing stands for ``mtime``: it was made once that
        mtime had held for RECENT_CHANGE_S on this process's own clock (so a mount whose clock
        differs changes nothing), and so holds every file created in the tick it stands for."""
        seen = self._dir_mtimes.get(dirpath)
        if seen is not None and seen[0] == mtime:
            if seen[2]:
                return False
            since = seen[1]
        else:
            since = time.monotonic()
        self._dir_mtimes[dirpath] = (mtime, since, time.monotonic() - since >= RECENT_CHANGE_S)
        return True

    def _forget(self, paths: list[str]) -> None:
        for path in paths:
            self._settling.pop(path, None)
            self._retries.pop(path, None)
            self._ignored.discard(path)
        remembered = [path for path in paths if self._done.pop(path, None) is not None]
        if remembered:
            self._redis("forget", lambda: dedupe.forget_files(self.client, self._key, remembered))

    def _consider(self, path: str) -> None:
        if path in self._settling or path in self._retries:
            return
        if not is_candidate_name(os.path.basename(path)):
            self._ignore(path, "not an image name")
            return
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return
        if not stat.S_ISREG(st.st_mode):
            self._ignore(path, "symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file")
            return
        if self._done.get(path) == f"{st.st_size}:{st.st_mtime_ns}":
            return
        self._settling[path] = (_listed(st), time.monotonic())

    def _ignore(self, path: str, reason: str) -> None:
        if path not in self._ignored:
            self._ignored.add(path)
            log.info("watch.ignored", path=path, reason=reason)

    # -- publishing --------------------------------------------------------------------------
    def _publish(self, path: str, listed: _Listed, failures: int = 0) -> int:
        # Wait before reading, so that no bytes are held while the pipeline is full.
        self._redis(
            "backpressure", lambda: publishing.wait_for_room(self.client, self.high_water, while_waiting=self._waiting)
        )
        try:
            # Anything may have changed during that wait: nothing outside the folder is opened,
            # and only the file listed is read.
            read = read_job(path, self.max_image_bytes, opener=beneath.opener(str(self.folder), listed.file_id))
        except FileNotFoundError:
            return 0  # removed since it settled
        except beneath.NotTheListedFile:
            current = _signature(path)
            if current is not None:
                self._settling[path] = (current, time.monotonic())  # the new file settles first
            return 0
        except NotARegularFile:
            self.refused += 1
            self._ignore(path, "not a regular file when opened")
            return 0
        except OSError as exc:
            self._read_failed(path, listed, failures + 1, exc)
            return 0
        if (read.size, read.mtime_ns) != (listed.size, listed.mtime_ns) or not read.complete:
            # changed: settle again
            self._settling[path] = (_Listed(read.size, read.mtime_ns, listed.file_id), time.monotonic())
            return 0
        job = read.job
        # The same job (same id) is sent again after a transient error: the script answers
        # "already" if the first attempt went through, so it is published exactly once.
        outcome = self._redis(
            "publish",
            lambda: dedupe.publish_unseen(
                self.client, job, read.data, force=self.force, dedupe=read.analysable, window_s=self.dedupe_window_s
            ),
        )
        signature = f"{read.size}:{read.mtime_ns}"
        self._redis("remember", lambda: dedupe.remember_file(self.client, self._key, path, signature))
        self._done[path] = signature
        if outcome.status == "duplicate":
            self.duplicates += 1
            log.info("watch.duplicate", path=path, first_seen_as=outcome.first_path)
            return 0
        self.published += 1
        log.info("watch.published", path=path, image_id=job["image_id"], entry_id=outcome.entry_id)
        return 1

    def _read_failed(self, path: str, listed: _Listed, failures: int, exc: OSError) -> None:
        self.read_failures += 1
        delay = min(self.read_retry_min_s * 2 ** (failures - 1), self.read_retry_max_s)
        self._retries[path] = _Retry(listed, failures, time.monotonic() + delay)
        log.warning("watch.unreadable", path=path, error=str(exc), attempt=failures, retry_in_s=delay)

    def _redis(self, what: str, action: Callable[[], T]) -> T:
        return publishing.retry_transient(action, what=what, while_waiting=self._waiting)


# A folder's mtime moves in coarse ticks (a few ms; a second on some network mounts) and os.walk
# reads it after listing the folder: a file created in the same tick as the listing, or between
# the listing and the stat, leaves an mtime equal to the one remembered with a listing that lacks
# the file. So a folder is listed again on each pass until its mtime has held this long, timed on
# this machine's monotonic clock: the mtime is only compared with itself, never with the time
# here, so a file server whose clock runs behind or ahead cannot make a listing look settled.
RECENT_CHANGE_S = 2.0


def _signature(path: str) -> _Listed | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return _listed(st)


def _listed(st: os.stat_result) -> _Listed:
    return _Listed(st.st_size, st.st_mtime_ns, beneath.file_id(st))
