"""Finding stored results in Redis by the end of their image id (`faces result IMAGE`)."""

from __future__ import annotations

import redis

from faces.streams import names
from faces.streams.groups import text

_RESULT_PREFIX = names.result_key("")


def results_with_id_suffix(client: redis.Redis, suffix: str) -> dict[str, str]:
    """image id -> stored JSON result, for every result whose image id ends with `-suffix`.

    Image ids end with the first 8 hex digits of the sha256 (producer/files.py `image_id_for`),
    so this finds the few results a file, an image id or a sha256 prefix can name, with one
    SCAN instead of reading every result. `suffix` is hex: nothing in it is a glob pattern."""
    keys = list(client.scan_iter(match=names.result_key(f"*-{suffix}"), count=1000))
    values = client.mget(keys) if keys else []
    return {text(key)[len(_RESULT_PREFIX) :]: text(value) for key, value in zip(keys, values) if value is not None}
