"""The drop-folder watcher: publish each new image dropped into a folder exactly once.

How it decides:
- a file is read only once it is complete: its size and mtime unchanged for `settle_s`;
- hidden and temporary files, and non-image names, are ignored (logged once each);
- symlinks are never followed: a link is ignored, so nothing outside the folder is read;
- the same bytes under any name are analysed once (sha256 dedupe in Redis), unless `force`;
- files already handled are remembered in Redis by (path, size, mtime), so a restart publishes
  what arrived while it was down without reading the old files again;
- when a directory's mtime changes (entries added, removed or renamed) only the names new to it
  are stat'ed; between changes only the files still settling are. A file rewritten in place
  under a name already handled is not published again (drop a new name, or use `faces submit`).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import redis
import structlog

from producer.files import DEFAULT_MAX_IMAGE_BYTES, IMAGE_SUFFIXES, read_job
from streams import dedupe, publishing

log = structlog.get_logger(__name__)

TEMP_SUFFIXES = frozenset({".tmp", ".part", ".partial", ".crdownload", ".download", ".swp", ".lock"})


def is_candidate_name(name: str) -> bool:
    """Not hidden, not a temp/partial file, and an image suffix."""
    if name.startswith(".") or name.endswith("~") or name.startswith("~$"):
        return False
    suffix = os.path.splitext(name)[1].lower()
    return suffix not in TEMP_SUFFIXES and suffix in IMAGE_SUFFIXES


@dataclass
class Watcher:
    client: redis.Redis
    folder: Path
    settle_s: float = 1.0
    poll_s: float = 0.5
    force: bool = False
    high_water: int = 500
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    published: int = 0
    duplicates: int = 0
    _dir_mtimes: dict[str, int] = field(default_factory=dict)
    _dir_names: dict[str, set[str]] = field(default_factory=dict)
    _settling: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # path -> size, mtime, since
    _done: dict[str, str] = field(default_factory=dict)  # path -> "size:mtime_ns"
    _ignored: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.folder = self.folder.resolve()
        self._key = dedupe.watch_key(hashlib.sha256(str(self.folder).encode()).hexdigest()[:16])
        self._done = dedupe.remembered_files(self.client, self._key)

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Poll until `should_stop()`; every file that settles is published once."""
        log.info("watch.started", folder=str(self.folder), remembered=len(self._done))
        while not should_stop():
            self.poll_once()
            time.sleep(self.poll_s)

    def poll_once(self) -> int:
        """One pass: look for new files, publish those that settled. Returns how many published."""
        self._scan_changed_dirs()
        now = time.monotonic()
        published = 0
        for path, (size, mtime, since) in list(self._settling.items()):
            current = _signature(path)
            if current is None:
                del self._settling[path]  # gone before it settled
            elif current != (size, mtime):
                self._settling[path] = (*current, now)  # still being written
            elif now - since >= self.settle_s:
                del self._settling[path]
                published += self._publish(path, size, mtime)
        return published

    def _scan_changed_dirs(self) -> None:
        for dirpath, dirnames, filenames in os.walk(self.folder, followlinks=False):
            # Hidden folders are skipped, like hidden files.
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            try:
                mtime = os.stat(dirpath).st_mtime_ns
            except FileNotFoundError:
                continue
            if self._dir_mtimes.get(dirpath) == mtime:
                continue
            self._dir_mtimes[dirpath] = mtime
            names = set(filenames)
            for name in sorted(names - self._dir_names.get(dirpath, set())):
                self._consider(os.path.join(dirpath, name))
            self._dir_names[dirpath] = names

    def _consider(self, path: str) -> None:
        if path in self._settling:
            return
        name = os.path.basename(path)
        if os.path.islink(path) or not is_candidate_name(name):
            if path not in self._ignored:
                self._ignored.add(path)
                log.info("watch.ignored", path=path,
                         reason="symlink" if os.path.islink(path) else "not an image name")
            return
        current = _signature(path)
        if current is None or self._done.get(path) == f"{current[0]}:{current[1]}":
            return
        self._settling[path] = (*current, time.monotonic())

    def _publish(self, path: str, size: int, mtime: int) -> int:
        publishing.wait_for_room(self.client, self.high_water)
        try:
            job, data = read_job(path, size, self.max_image_bytes)
        except OSError as exc:
            log.warning("watch.unreadable", path=path, error=str(exc))
            return 0
        entry = dedupe.publish_unseen(self.client, job, data, force=self.force)
        dedupe.remember_file(self.client, self._key, path, f"{size}:{mtime}")
        self._done[path] = f"{size}:{mtime}"
        if entry is None:
            self.duplicates += 1
            log.info("watch.duplicate", path=path, first_seen_as=dedupe.seen_path(self.client, job["image"]["sha256"]))
            return 0
        self.published += 1
        log.info("watch.published", path=path, image_id=job["image_id"], entry_id=entry)
        return 1


def _signature(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns
