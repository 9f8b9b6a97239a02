"""The JSON result of one image: built by the sink from the finished job.

The format is `faces.result/1`, described by `result.schema.json` beside this file and in the
README. Boxes and points are in original-image pixels, (x, y) the top-left corner.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from faces.schemas.job import Job

RESULT_SCHEMA = "faces.result/1"
SCHEMA_FILE = Path(__file__).with_name("result.schema.json")
# timings_ms[STAGE + BATCH_SHARE]: an image's share of a call made once for its whole batch.
BATCH_SHARE = "_batch_share"

_FACE_DEFAULTS: dict[str, Any] = {
    "landmarks": None,
    "pose": None,
    "quality": None,
    "age": None,
    "age_range": None,
    "gender": None,
    "person": None,  # recognition (the embed stage): the enrolled person this face is, or null
    "cluster": None,  # ... or the unnamed cluster it joined (null when named, or recognition is off)
}


def build_result(job: Job, processed_at: datetime | None = None) -> dict[str, Any]:
    """The result document of a job that went through the pipeline (or failed on the way)."""
    error = job.get("error")
    image = job["image"]
    faces = [] if error else [{**_FACE_DEFAULTS, **face} for face in job.get("faces", [])]
    result = {
        "schema": RESULT_SCHEMA,
        "status": "error" if error else "ok",
        "error": error,
        "image_id": job["image_id"],
        "image": {
            "path": image["path"],
            "sha256": image["sha256"],
            "width": image.get("width"),
            "height": image.get("height"),
        },
        "faces": faces,
        "models": job.get("models", {}),
        "notes": job.get("notes", {}),
        "timings_ms": job.get("timings_ms", {}),
        "job_id": job["job_id"],
        "submitted_at": _iso(datetime.fromtimestamp(job["submitted_at"], timezone.utc)),
        "processed_at": _iso(processed_at or datetime.now(timezone.utc)),
    }
    if job.get("metadata"):
        result["metadata"] = job["metadata"]  # the submitter's own fields, only when it gave some
    return result


def stage_ms(timings: dict[str, float], stage: str) -> float:
    """A stage's milliseconds for one image from its timings_ms: what was measured for the
    image alone plus its share of calls made once for its whole batch (STAGE + BATCH_SHARE)."""
    return timings.get(stage, 0.0) + timings.get(stage + BATCH_SHARE, 0.0)


def supersedes(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether result `new` may replace `old`, the stored result of the same image.

    A newer submission's result wins (a replay, or a dead-letter retry, over the original job
    finishing late); within one job an error never replaces ok (a late duplicate of a delivery
    that lost its bytes). Submission times are ISO strings of one fixed format, so they compare
    as text; the job id breaks a tie. streams/commit.py applies the same rule in Lua to the
    copy kept in Redis: keep the two in step.
    """
    old_job = old.get("job_id") if isinstance(old.get("job_id"), str) else ""
    old_at = old.get("submitted_at") if isinstance(old.get("submitted_at"), str) else ""
    if old_job == new["job_id"]:
        return not (old.get("status") == "ok" and new["status"] == "error")
    if new["submitted_at"] != old_at:
        return new["submitted_at"] > old_at
    return new["job_id"] > old_job


def dumps(result: dict[str, Any]) -> str:
    """Stable, readable JSON (sorted keys would scatter the faces' fields; keep build order)."""
    return json.dumps(result, ensure_ascii=False, indent=1, allow_nan=False)


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
