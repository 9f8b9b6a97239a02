"""Replay: publish stored images again for reprocessing, from the first stage or a later one.

What to replay comes from the images stream's history (kept for --retention). The bytes come
from the file at the submitted path (they were released once the first result was written) and
must still hash to the same sha256. `from_stage` later than detect starts from the stored
result: e.g. `agegender` keeps boxes and landmarks as they are and fills in ages and genders.
The new result overwrites the old one in place (same image id: same file, same Redis key).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import redis
import structlog

from producer.files import SourceChanged, read_same_bytes
from schemas import events
from streams import history, names, publishing, results

log = structlog.get_logger(__name__)

_STREAM_ID = re.compile(r"\d+(-\d+)?")
_HEX = re.compile(r"[0-9a-fA-F]+")


class ReplayError(ValueError):
    """An image cannot be replayed.

    Cause: its file is gone or changed since it was submitted (sha256 differs), or a replay from
    a later stage has no stored result to start from. Remedy: submit the file again with
    `faces submit`, or replay from the first stage.
    """


@dataclass
class ReplayPlan:
    jobs: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (image id or path, reason)


def to_stream_id(value: str | None, *, end: bool) -> str:
    """An ISO time or a stream id as a stream id bound ("-"/"+" when not given)."""
    if not value:
        return "+" if end else "-"
    if _STREAM_ID.fullmatch(value):
        return value
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    ms = int(moment.timestamp() * 1000)
    return f"{ms}-{'18446744073709551615' if end else '0'}"


def _matches(job: dict, selectors: list[str]) -> bool:
    """Selected by path (as submitted, or the same file), image id, or a sha256 prefix (>= 8 hex)."""
    if not selectors:
        return True
    image = job["image"]
    for sel in selectors:
        if sel in (image["path"], job["image_id"]):
            return True
        if len(sel) >= 8 and _HEX.fullmatch(sel) and image["sha256"].startswith(sel.lower()):
            return True
        if Path(sel).resolve() == Path(image["path"]).resolve():
            return True
    return False


def plan(client: redis.Redis, *, since: str | None = None, until: str | None = None,
         images: list[str] | None = None, from_stage: str = "detect") -> ReplayPlan:
    """The jobs to publish: the latest submission of each selected image, rebuilt for `from_stage`."""
    names.route(from_stage)
    latest: dict[str, dict] = {}
    for _entry_id, job in history.submitted_jobs(client, to_stream_id(since, end=False),
                                                 to_stream_id(until, end=True)):
        if _matches(job, images or []):
            latest[job["image_id"]] = job
    out = ReplayPlan()
    for image_id, submitted in latest.items():
        try:
            out.jobs.append(_rebuild(client, submitted, from_stage))
        except ReplayError as exc:
            out.skipped.append((image_id, str(exc)))
    return out


def _rebuild(client: redis.Redis, submitted: dict, from_stage: str) -> dict:
    # Submitted now: the replay's result must win over the original job's, whichever ends last.
    job_id = uuid.uuid4().hex
    job = events.as_new_job(submitted, job_id=job_id, blob=names.blob_key(job_id), submitted_at=time.time())
    job.update(start_stage=from_stage, error=None, faces=[], timings_ms={}, notes={}, models={})
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
    return job


_FIELDS_BY_STAGE = {"detect": ("box", "score"), "landmarks": ("landmarks", "pose", "quality"),
                    "agegender": ("age", "age_range", "gender")}
_MODEL_KEYS = {"detector": "detect", "landmarks": "landmarks", "agegender": "agegender"}


def _stage_before(model_key: str, from_stage: str) -> bool:
    order = names.STAGE_ORDER
    stage = _MODEL_KEYS.get(model_key)
    return stage is not None and order.index(stage) < order.index(from_stage)


def _face_until(face: dict, from_stage: str) -> dict:
    """The parts of a stored face made by the stages before `from_stage`."""
    kept = {}
    for stage in names.STAGE_ORDER[: names.STAGE_ORDER.index(from_stage)]:
        for key in _FIELDS_BY_STAGE.get(stage, ()):
            kept[key] = face.get(key)
    return kept


def publish(client: redis.Redis, job: dict) -> str:
    """Read the image file again, check it is the same bytes, and publish into the stage's input.
    The caller waits for room first (ops/replayjob.py, which supervises its workers meanwhile)."""
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
    return list(order[order.index(from_stage):])

