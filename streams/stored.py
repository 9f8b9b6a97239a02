"""Every image's latest result that Redis holds, for GET /v1/export: the keys listed at once,
then the documents read a batch at a time, so an export of many results never holds them all."""

from __future__ import annotations

from collections.abc import Iterator

import redis

from faces.streams import names
from faces.streams.groups import text

_RESULT_PREFIX = names.result_key("")
READ_BATCH = 200  # results read per MGET


def stored_image_ids(client: redis.Redis) -> list[str]:
    """The image ids that have a stored result, sorted (SCAN, never KEYS: no long block)."""
    keys = client.scan_iter(match=names.result_key("*"), count=1000)
    return sorted(text(key)[len(_RESULT_PREFIX) :] for key in keys)


def stored_results(client: redis.Redis, image_ids: list[str]) -> Iterator[str]:
    """The JSON text of each image's result, in the order given; results that expired since
    they were listed are left out."""
    for start in range(0, len(image_ids), READ_BATCH):
        batch = image_ids[start : start + READ_BATCH]
        for raw in client.mget([names.result_key(i) for i in batch]):
            if raw is not None:
                yield text(raw)
