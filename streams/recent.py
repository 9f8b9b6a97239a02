"""The latest results, newest first, a page at a time: the results stream read backwards, each
announcement with its image's stored result; or the dead letters that name an image. Either may
be narrowed to one status and to image ids holding some text (`Wanted`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import redis

from faces.errors import FacesError
from faces.schemas import formats
from faces.streams import deadletters, names
from faces.streams.groups import text
from faces.streams.replies import Entry, entries

SCAN_CHUNK = 500  # entries read per XREVRANGE while a filter skips some
DEAD_LETTERED = "dead_lettered"  # the status of a listed dead letter (there is no result)
STATUSES = ("ok", "error", DEAD_LETTERED)  # what a listing may be narrowed to


class BadCursor(FacesError, ValueError):
    """A cursor that is not a results-stream entry id.

    Cause: it was made up or cut short. Remedy: pass back the `next_cursor` of a previous page
    unchanged, or leave it out to start from the newest result."""

    http_status = 400


@dataclass(frozen=True)
class Finished:
    """One announcement of the results stream and the image's stored result (None: expired), or
    one dead letter (status DEAD_LETTERED, no result, `error` saying why)."""

    cursor: str  # the entry id: pass it as `before` for the page after this item
    image_id: str
    job_id: str
    status: str
    finished_ms: int  # when the sink announced it (the entry id's time)
    result: str | None  # the stored JSON result of the image (possibly a newer job's)
    error: dict | None = None  # a dead letter's {"stage", "type", "message"}


@dataclass(frozen=True)
class Wanted:
    """Which items a listing keeps: one status (None: any) and image ids containing `text`
    (case-insensitive; a file name's extension is ignored, since the image id keeps its stem)."""

    status: str | None = None
    text: str | None = None

    def name_matches(self, image_id: str) -> bool:
        if not self.text or not self.text.strip():
            return True
        folded, wanted = image_id.casefold(), self.text.strip().casefold()
        return wanted in folded or re.sub(r"\.[^.]{1,5}$", "", wanted) in folded

    def matches(self, image_id: str, status: str) -> bool:
        return (self.status is None or status == self.status) and self.name_matches(image_id)


ANY = Wanted()


def recent_results(
    client: redis.Redis, *, limit: int, before: str | None = None, since_ms: int | None = None, wanted: Wanted = ANY
) -> tuple[list[Finished], str | None]:
    """Up to `limit` items older than the entry `before` (None: from the newest) and no older
    than `since_ms`, newest first, that `wanted` keeps; and the cursor of the next page (None:
    no more). Announcements, or dead letters when `wanted.status` is DEAD_LETTERED."""
    check_cursor(before)
    letters = wanted.status == DEAD_LETTERED
    stream = names.DEAD_LETTERS if letters else names.RESULTS
    kept: list[Entry] = []
    upper = f"({before}" if before else "+"
    lower = f"{since_ms}-0" if since_ms else "-"
    filtering = wanted != ANY
    while len(kept) <= limit:
        chunk = SCAN_CHUNK if filtering else limit + 1
        rows = entries(client.xrevrange(stream, max=upper, min=lower, count=chunk))
        for entry_id, fields in rows:
            image_id = text(fields.get(b"image_id", b""))
            status = DEAD_LETTERED if letters else text(fields.get(b"status", b""))
            if image_id and wanted.matches(image_id, status):
                kept.append((entry_id, fields))
        if len(rows) < chunk:
            break
        upper = f"({rows[-1][0]}"
    more, kept = len(kept) > limit, kept[:limit]
    page = _letters(kept) if letters else _announcements(client, kept)
    return page, (page[-1].cursor if more else None)


def check_cursor(before: str | None) -> None:
    """BadCursor unless `before` is None or an entry id as the results stream holds them (the
    format the HTTP API documents for its cursor, schemas/formats.py)."""
    if before is not None and not formats.matches(formats.ENTRY_ID_PATTERN, before):
        raise BadCursor(f"cursor {before!r} is not an entry id like 1764279000123-0")


def _announcements(client: redis.Redis, rows: list[Entry]) -> list[Finished]:
    image_ids = [text(fields.get(b"image_id", b"")) for _id, fields in rows]
    stored = client.mget([names.result_key(i) for i in image_ids]) if rows else []
    return [
        Finished(
            entry_id,
            image_id,
            text(fields.get(b"job_id", b"")),
            text(fields.get(b"status", b"")),
            _ms(entry_id),
            text(raw) if raw is not None else None,
        )
        for (entry_id, fields), image_id, raw in zip(rows, image_ids, stored)
    ]


def _letters(rows: list[Entry]) -> list[Finished]:
    out = []
    for entry_id, fields in rows:
        letter = deadletters.parse(entry_id, fields)
        out.append(
            Finished(
                entry_id,
                letter.image_id or "",
                letter.job_id or "",
                DEAD_LETTERED,
                _ms(entry_id),
                None,
                {"stage": letter.stage, "type": letter.error_type, "message": letter.message},
            )
        )
    return out


def _ms(entry_id: str) -> int:
    return int(entry_id.split("-")[0])
