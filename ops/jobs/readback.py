"""Keeping a job's results in the folders of the command that submitted it.

Against a shared Redis another stack's sink may have processed some of `faces run`'s images
and written their JSON into *its* --storage. The run reads each of its results back from Redis
(where every sink keeps the latest one) and writes it into its own --storage, with the same
precedence rule as the sinks, and draws the picture into its own --output from the file."""

from __future__ import annotations

import json
from pathlib import Path

from faces.consumers.pictures import write_picture
from faces.consumers.storage import inside, write_if
from faces.schemas.result import supersedes


def keep_locally(result_text: str, result: dict, storage: Path, output: Path | None) -> bool:
    """Write the result (its JSON text, and that text parsed) into `storage` unless it already
    holds this one or a newer one; then its picture into `output` (when given and the photo is
    still readable). True if written."""

    def should_replace(current: dict) -> bool:
        same = (current.get("job_id"), current.get("status")) == (result["job_id"], result["status"])
        return not same and supersedes(result, current)

    written = write_if(inside(storage, f"{result['image_id']}.json"), result_text.encode(), should_replace)
    if written and output is not None and result.get("status") == "ok":
        try:
            data = Path(result["image"]["path"]).read_bytes()
        except OSError:
            return written  # the JSON is what was promised; the picture needs the photo
        write_picture(output, result, data)
    return written


def current_result(storage: Path, image_id: str, sha256: str) -> bool:
    """Whether `storage` already holds an ok result for exactly these bytes (a second
    `faces run` on the same folder skips them unless --force)."""
    try:
        stored = json.loads(inside(storage, f"{image_id}.json").read_text())
    except (OSError, ValueError):
        return False
    return stored.get("status") == "ok" and stored.get("image", {}).get("sha256") == sha256
