"""Replay: publish stored images again for reprocessing, from the first stage or a later one.

What to replay comes from the images stream's history (kept for --retention). The bytes come
from the file at the submitted path (they were released once the first result was written) and
must still hash to the same sha256. `from_stage` later than detect starts from the stored
result: e.g. `agegender` keeps boxes and landmarks as they are and fills in ages and genders.
The new result overwrites the old one in place (same image id: same file, same Redis key).
Images are named by ImageSelector (path, image id or sha256 prefix), shared with `faces result`.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis
import structlog

from faces import exits
from faces.errors import FacesError
from faces.producer.files import SourceChanged, image_id_for, read_same_bytes, sha256_of_file
from faces.schemas import events, formats
from faces.schemas.job import Face, FaceKey, Job
from faces.streams import clock, history, names, publishing, results

log = structlog.get_logger(__name__)

_STREAM_ID = re.compile(r"\d+(-\d+)?")
_HEX = re.compile(r"[0-9a-fA-F]+")
# <stem>-<hex digits of the sha256> (schemas/formats.py), whatever letters the stem has.
_IMAGE_ID = re.compile(rf".+-[0-9a-f]{{{formats.IMAGE_ID_HASH_CHARS}}}")
MIN_PREFIX_HEX = formats.IMAGE_ID_HASH_CHARS  # what an image id carries of the sha256: shorter is too vague
TIME_FORMS = "an ISO time like 2026-11-27T10:00 (UTC unless it names a zone) or a stream id like 1700000000000-0"
IMAGE_FORMS = f"a file path, an image id, or a sha256 prefix of {MIN_PREFIX_HEX} or more hex digits"


class ReplayError(FacesError, ValueError):
    """An image cannot be replayed.

    Cause: its file is gone or changed since it was submitted (sha256 differs), or a replay from
    a later stage has no stored result to start from. Remedy: submit the file again with
    `faces submit`, or replay from the first stage.
    """

    internal = True  # the image is skipped and the reason listed


class BadSelection(FacesError, ValueError):
    """A time or image given to select images cannot select any (the CLI exits 2).

    Cause: a time that is neither ISO nor a stream id, a sha256 prefix shorter than 8 hex digits,
    or a prefix that matches several images. Remedy: the message names the accepted forms, or
    the images a prefix matched (give more digits, or the image id).
    """

    exit_code = exits.USAGE  # a time or prefix that cannot select: bad usage


class ImageNotFound(FacesError, LookupError):
    """An image named by path, image id or sha256 prefix is not known where it was looked for
    (the CLI exits 1).

    Cause: a typo, a file never submitted, or history trimmed past the --retention-s window.
    Remedy: check the name against --storage, widen --since/--until, or `faces submit` the file.
    """


@dataclass
class ReplayPlan:
    jobs: list[Job] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (image id or path, reason)


def to_stream_id(value: str | None, *, end: bool) -> str:
    """An ISO time or a stream id as a stream id bound ("-"/"+" when not given); BadSelection
    for anything else."""
    if not value:
        return "+" if end else "-"
    if _STREAM_ID.fullmatch(value):
        return value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadSelection(f"{value!r} is not a time: give {TIME_FORMS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    ms = int(moment.timestamp() * 1000)
    return f"{ms}-{'18446744073709551615' if end else '0'}"


@dataclass(frozen=True)
class ImageSelector:
    """One image named on the command line (`replay --image`, `faces result`): a file path, an
    image id, or a sha256 prefix of at least MIN_PREFIX_HEX hex digits. It matches a job or a
    result: both carry `image_id` and `image.path` / `image.sha256`."""

    text: str
    file_id: str | None = None  # the image id of the file at `text`, when it is one

    @classmethod
    def parse(cls, text: str) -> ImageSelector:
        """BadSelection for a hex prefix too short to name one image (unless a file has that name)."""
        if Path(text).is_file():
            return cls(text, file_id=image_id_for(text, sha256_of_file(Path(text))))
        if _HEX.fullmatch(text) and len(text) < MIN_PREFIX_HEX:
            raise BadSelection(
                f"sha256 prefix {text} is too short: give at least {MIN_PREFIX_HEX} "
                "hex digits, the image id, or the file's path"
            )
        return cls(text)

    @property
    def is_prefix(self) -> bool:
        return self.file_id is None and _HEX.fullmatch(self.text) is not None

    @property
    def id_suffix(self) -> str | None:
        """The 8 hex digits every image id this selector can match ends with (None: unknown)."""
        if self.file_id:
            return self.file_id[-formats.IMAGE_ID_HASH_CHARS :]
        if self.is_prefix:
            return self.text[:MIN_PREFIX_HEX].lower()
        return self.text[-formats.IMAGE_ID_HASH_CHARS :] if _IMAGE_ID.fullmatch(self.text) else None

    def matches(self, record: Mapping[str, Any], resolved: Callable[[str], Path] = lambda p: Path(p).resolve()) -> bool:
        """By sha256 prefix; or by image id, the path as submitted or the same file, the id of
        the file's bytes now (the file may have been submitted under another path). `resolved`
        resolves a path; `plan` passes one that remembers, since it asks for every selector of
        every submission (20 selectors over 500 submissions took a second otherwise)."""
        image = record["image"]
        if self.is_prefix:
            return image["sha256"].startswith(self.text.lower())
        if self.text in (image["path"], record["image_id"]) or record["image_id"] == self.file_id:
            return True
        return resolved(self.text) == resolved(image["path"])

    def choose(self, records: Mapping[str, Mapping[str, Any]], where: str) -> Choice:
        """The images this selector names among `records` (image id -> its latest job or
        result, each with `image.sha256` and `submitted_at`). ImageNotFound when there is none;
        for a sha256 prefix matching several images: the latest when all hold the same bytes
        (the same file submitted under several names, where no more digits could tell them
        apart), BadSelection naming them when their bytes differ."""
        if not records:
            raise ImageNotFound(f"image {self.text} not found: no {where} has that path, image id or sha256 prefix")
        if not self.is_prefix or len(records) == 1:
            return Choice(sorted(records))
        if len({record["image"]["sha256"] for record in records.values()}) > 1:
            found = sorted(records)
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise BadSelection(
                f"sha256 prefix {self.text} is ambiguous: it matches {len(found)} images "
                f"({shown}); give more digits or the image id"
            )
        latest = max(records, key=lambda image_id: records[image_id]["submitted_at"])
        others = ", ".join(sorted(set(records) - {latest}))
        return Choice(
            [latest],
            f"{self.text} names the same bytes submitted as {len(records)} images; "
            f"taking the latest, {latest} (give the image id for {others})",
        )


@dataclass(frozen=True)
class Choice:
    """What an ImageSelector chose: image ids, and a note for the user when it picked one of
    several images of the same bytes."""

    image_ids: list[str]
    note: str | None = None


def parse_selectors(texts: list[str]) -> list[ImageSelector]:
    return [ImageSelector.parse(t) for t in texts]


def check_selection(since: str | None, until: str | None, images: list[str]) -> None:
    """BadSelection for a time or an image that cannot select anything, checked without Redis."""
    for option, value, end in (("--since", since, False), ("--until", until, True)):
        try:
            to_stream_id(value, end=end)
        except BadSelection as exc:
            raise BadSelection(f"{option} {exc}") from None
    parse_selectors(images)


def plan(
    client: redis.Redis,
    *,
    since: str | None = None,
    until: str | None = None,
    images: list[str] | None = None,
    from_stage: str = "detect",
) -> ReplayPlan:
    """The jobs to publish: the latest submission of each selected image, rebuilt for `from_stage`.

    Every image named must match a submission in the window (ImageNotFound), a prefix only one
    image (BadSelection): a replay that silently does nothing would look like a success."""
    names.route(from_stage)
    selectors = parse_selectors(images or [])
    matched: dict[ImageSelector, dict[str, Job]] = {s: {} for s in selectors}  # image id -> latest job
    latest: dict[str, Job] = {}
    resolved = functools.lru_cache(maxsize=None)(lambda path: Path(path).resolve())  # for this plan only
    for _entry_id, job in history.submitted_jobs(client, to_stream_id(since, end=False), to_stream_id(until, end=True)):
        for selector in selectors:
            if selector.matches(job, resolved):
                matched[selector][job["image_id"]] = job
        if not selectors:
            latest[job["image_id"]] = job
    window = " in that window" if since or until else ""
    for selector, jobs in matched.items():
        chosen = selector.choose(jobs, f"submission kept for replay{window}")
        if chosen.note:
            log.warning("replay.same_bytes", note=chosen.note)
        latest.update({image_id: jobs[image_id] for image_id in chosen.image_ids})
    out = ReplayPlan()
    for image_id, submitted in latest.items():
        try:
            out.jobs.append(_rebuild(client, submitted, from_stage))
        except ReplayError as exc:
            out.skipped.append((image_id, str(exc)))
    return out


def _rebuild(client: redis.Redis, submitted: Job, from_stage: str) -> Job:
    # Submitted now, on Redis's clock (publishing stamps it again when it publishes): the
    # replay's result must win over the original job's, whichever ends last.
    job_id = uuid.uuid4().hex
    job = events.as_new_job(submitted, job_id=job_id, submitted_at=clock.server_now(client))
    job.update({"start_stage": from_stage, "error": None, "faces": [], "timings_ms": {}, "notes": {}, "models": {}})
    if from_stage != "detect":
        stored = results.stored_result(client, job["image_id"])
        if stored is None:
            raise ReplayError(f"no stored result to start {from_stage} from")
        result = json.loads(stored)
        if result["status"] != "ok":
            raise ReplayError(f"stored result is an error ({result['error']['message']}); replay from detect")
        job["image"]["width"], job["image"]["height"] = result["image"]["width"], result["image"]["height"]
        job["faces"] = [_face_until(face, from_stage) for face in result["faces"]]
        job["models"] = {k: v for k, v in result["models"].items() if _stage_before(k, from_stage)}
        job["timings_ms"] = _timings_before(result.get("timings_ms") or {}, from_stage)
    return job


_FIELDS_BY_STAGE: dict[str, tuple[FaceKey, ...]] = {
    "detect": ("box", "score"),
    "landmarks": ("landmarks", "pose", "quality"),
    "agegender": ("age", "age_range", "gender"),
    "embed": ("person", "cluster", "descriptor"),
}
_MODEL_KEYS = {"detector": "detect", "landmarks": "landmarks", "agegender": "agegender", "embed": "embed"}


def _stage_before(model_key: str, from_stage: str) -> bool:
    order = names.STAGE_ORDER
    stage = _MODEL_KEYS.get(model_key)
    return stage is not None and order.index(stage) < order.index(from_stage)


def _timings_before(timings: dict, from_stage: str) -> dict:
    """The stored timings of the stages that are not re-run. Those re-run must start from
    nothing: a stage adds its time to what the job carries (consumers/common.py `timed`).
    A timing is a stage's when its key is the stage name or starts with it and "_"
    (`agegender_batch_share`: its share of a call made for the whole batch)."""
    earlier = names.STAGE_ORDER[: names.STAGE_ORDER.index(from_stage)]
    return {
        key: ms for key, ms in timings.items() if any(key == stage or key.startswith(f"{stage}_") for stage in earlier)
    }


def _face_until(face: dict, from_stage: str) -> Face:
    """The parts of a stored face made by the stages before `from_stage`."""
    kept: Face = {}
    for stage in names.STAGE_ORDER[: names.STAGE_ORDER.index(from_stage)]:
        for key in _FIELDS_BY_STAGE.get(stage, ()):
            kept[key] = face.get(key)
    return kept


def publish(client: redis.Redis, job: Job) -> str:
    """Read the image file again, check it is the same bytes, and publish into the stage's input.
    The caller waits for room first (ops/jobs/replay.py, which supervises its workers meanwhile)."""
    try:
        data = read_same_bytes(job["image"]["path"], job["image"]["sha256"])
    except SourceChanged as exc:
        raise ReplayError(str(exc)) from exc
    stream = names.route(job["start_stage"]).input_stream
    entry = publishing.publish_image(client, job, data, stream=stream)
    log.info("image.replayed", path=job["image"]["path"], image_id=job["image_id"], from_stage=job["start_stage"])
    return entry


def stages_from(from_stage: str) -> list[str]:
    order = names.STAGE_ORDER
    return list(order[order.index(from_stage) :])
