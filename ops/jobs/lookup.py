"""`faces result IMAGE`: one stored result, by file path, image id or sha256 prefix.

Redis holds the latest result of each image (for the result TTL); the sink also wrote it to
--storage, which outlives the pipeline. So Redis is asked first when a pipeline is running,
and the storage folder answers otherwise, or for results Redis no longer holds."""

from __future__ import annotations

import json
from pathlib import Path

from faces.errors import FacesError
from faces.ops.jobs.target import NoRedisRunning, attached
from faces.ops.settings import AppSettings
from faces.producer.replay import ImageSelector
from faces.streams import lookup


class ResultLookupError(FacesError, RuntimeError):
    """A stored result file could not be read.

    Cause: a file in --storage that is not JSON (written by hand, or truncated by a full disk).
    Remedy: delete it, and `faces replay --image ID` to write it again.
    """


def find_result(app: AppSettings, name: str) -> tuple[str, str | None]:
    """The stored JSON text of the one image `name` selects, and a note when `name` (a sha256
    prefix) matched several images of the same bytes and the latest was taken.
    producer.replay.ImageNotFound when none has a result, BadSelection when `name` is too short
    or matches images of different bytes."""
    selector = ImageSelector.parse(name)
    suffix = selector.id_suffix
    if suffix is None:  # neither a file, an image id nor a sha256 prefix: nothing can match
        selector.choose({}, "stored result")
    in_redis, where = _in_redis(app, suffix)
    candidates = {**_in_storage(app.storage, suffix), **in_redis}  # Redis's copy is the newest
    documents = {image_id: _document(image_id, text, app.storage) for image_id, text in candidates.items()}
    chosen = selector.choose({image_id: doc for image_id, doc in documents.items() if selector.matches(doc)}, where)
    return candidates[chosen.image_ids[0]], chosen.note


def _in_redis(app: AppSettings, suffix: str | None) -> tuple[dict[str, str], str]:
    """The candidates Redis holds, and where the search looked (for the not-found message)."""
    if suffix is None:
        return {}, "stored result"
    try:
        with attached(app) as (_url, client):
            return lookup.results_with_id_suffix(client, suffix), f"result in Redis or {app.storage}/"
    except NoRedisRunning:
        return {}, f"result in {app.storage}/ (no pipeline is running, so Redis was not searched)"


def _in_storage(storage: Path, suffix: str | None) -> dict[str, str]:
    """image id -> JSON text of the result files in `storage` whose image id ends with `-suffix`."""
    if suffix is None:
        return {}
    return {path.stem: path.read_text() for path in storage.glob(f"*-{suffix}.json")}


def _document(image_id: str, text: str, storage: Path) -> dict:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ResultLookupError(
            f"the stored result of {image_id} is not JSON ({exc}); delete "
            f"{storage / (image_id + '.json')} and replay the image"
        ) from None
