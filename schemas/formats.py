"""The text formats of what a client names or sends: image ids, job ids, result cursors,
metadata and times, each defined once. The HTTP API checks its parameters with these patterns
and states the same patterns in its OpenAPI document, so a generated client never sends a
value the document allows and the server refuses (docs/http.md).

Patterns are written in the dialect Python's `re`, JSON Schema (ECMA 262) and Rust's regex
share, anchored with ^ and $; match them with `matches`, which needs the whole text (Python's
`$` alone would also match before a final newline)."""

from __future__ import annotations

import calendar
import re
from functools import cache, lru_cache
from typing import Any

from faces.schemas.events import METADATA_MAX_BYTES, METADATA_MAX_KEYS, METADATA_MAX_VALUE_CHARS
from faces.schemas.result import load_schema

# An image id: `<stem>-<hex>`, the stem from the file's name (producer/files.py image_stem says
# which letters survive), the hex the first digits of the image's sha256. The result contract
# states its shape (result.schema.json, `image_id_pattern`); the lengths are defined here.
IMAGE_ID_HASH_CHARS = 8  # hex digits of the sha256 that end an image id
IMAGE_ID_STEM_MAX_CHARS = 80  # letters of the file's name kept (fewer when its UTF-8 is too long)
IMAGE_ID_MAX_CHARS = IMAGE_ID_STEM_MAX_CHARS + 1 + IMAGE_ID_HASH_CHARS


def image_id(stem: str, sha256: str) -> str:
    """The image id of a file whose safe stem is `stem` and whose bytes hash to `sha256`."""
    return f"{stem}-{sha256[:IMAGE_ID_HASH_CHARS]}"


# A job id as every producer makes them: uuid4().hex.
JOB_ID_PATTERN = "^[0-9a-f]{32}$"
# An entry id of the results stream as Redis writes it (milliseconds-sequence, no leading zeros),
# the cursor of GET /v1/results; 18 digits at most keep each part inside a signed 64-bit integer.
ENTRY_ID_PATTERN = "^[1-9][0-9]{0,17}-(0|[1-9][0-9]{0,17})$"
# Epoch seconds, as GET /v1/results?since= takes them besides an RFC 3339 time.
EPOCH_SECONDS_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,9})?$"
# An RFC 3339 date-time (JSON Schema's format `date-time`): the shape; `rfc3339_epoch_s` checks
# the calendar. A leap second (:60) is a valid time of the format.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.removeprefix("^").removesuffix("$"))


def matches(pattern: str, text: str) -> bool:
    """Whether the whole of `text` has the format `pattern` (one of this module's)."""
    return _compiled(pattern).fullmatch(text) is not None


@lru_cache(maxsize=1)
def _result_properties() -> dict[str, Any]:
    return load_schema()["properties"]


def image_id_pattern() -> str:
    """An image id's pattern: the result contract's (schemas/result.schema.json), whose hex
    digits are IMAGE_ID_HASH_CHARS (tests/models/test_schemas_formats.py holds the two together)."""
    return _result_properties()["image_id"]["pattern"]


def is_image_id(text: str) -> bool:
    """Whether `text` is an image id the pipeline can have made (shape and length)."""
    return len(text) <= IMAGE_ID_MAX_CHARS and matches(image_id_pattern(), text)


def metadata_schema() -> dict[str, Any]:
    """The JSON Schema of a job's metadata: the result contract's (its count, key and value
    limits), with `captured_at`, when given, an RFC 3339 time. The total size limit
    (schemas/events.py METADATA_MAX_BYTES) is beyond what a JSON Schema can state."""
    schema = dict(_result_properties()["metadata"])
    schema["properties"] = {"captured_at": {**schema["additionalProperties"], "format": "date-time"}}
    schema["description"] = (
        f"your own fields, returned in the result's metadata: at most {METADATA_MAX_KEYS} keys, "
        f"values of at most {METADATA_MAX_VALUE_CHARS} characters, {METADATA_MAX_BYTES} bytes "
        "(UTF-8, keys and values) in all; captured_at, when given, an RFC 3339 time"
    )
    schema["x-max-bytes"] = METADATA_MAX_BYTES
    return schema


def rfc3339_epoch_s(text: str) -> float | None:
    """Epoch seconds of an RFC 3339 date-time (negative before 1970; a leap second counts as the
    next second); None when `text` is not one."""
    found = _RFC3339.fullmatch(text)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(found.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= _days_in(year, month) and hour <= 23 and minute <= 59 and second <= 60):
        return None
    offset_s = 0
    if found.group(8):
        offset_hours, offset_minutes = int(found.group(9)), int(found.group(10))
        if offset_hours > 23 or offset_minutes > 59:
            return None
        offset_s = (1 if found.group(8) == "+" else -1) * (offset_hours * 3600 + offset_minutes * 60)
    fraction = float(found.group(7)) if found.group(7) else 0.0
    return _days_since_1970(year, month, day) * 86400 + hour * 3600 + minute * 60 + second + fraction - offset_s


def _days_since_1970(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 in the proleptic Gregorian calendar, year 0 included (RFC 3339's
    0000, which Python's datetime and calendar.timegm refuse)."""
    year -= month <= 2
    era, year_of_era = divmod(year, 400)
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if calendar.isleap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31
