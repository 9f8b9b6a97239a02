"""Reading one upload of POST /v1/images: a multipart form (field `file`), a raw image body, or
JSON with `image_base64`; into bytes, a name and metadata. The size limit is enforced on the
stream itself: past it the answer is 413 at once, and the rest of the body is never read, so
an oversized upload is never held in memory. The body must also come in time (`Timeouts`):
past either limit the answer is 408 and the connection is closed, so a client that stops
sending holds neither a reading slot nor a connection for ever."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from faces import settings as defaults
from faces.ops.web.errors import ApiError
from faces.ops.web.params import check_date_time
from faces.ops.web.sniff import image_extension
from faces.producer.files import image_stem
from faces.producer.submit import UNNAMED
from faces.schemas.events import check_metadata

# Room for what wraps the image: a multipart form's boundaries, headers and metadata field; the
# other fields of a JSON body.
ENVELOPE_BYTES = 64 << 10
# The metadata fields an upload may give as query parameters (docs/http.md).
QUERY_METADATA = ("client_ref", "source", "captured_at")
# The fields of each form of upload (images.py states them); any other is refused, so that a
# misspelt one (`metdata`) is not dropped in silence.
MULTIPART_FIELDS = ("file", "metadata")
JSON_FIELDS = ("image_base64", "filename", "metadata")
RAW_TYPES = ("image/*", "application/octet-stream")  # the Content-Types of a raw image body
TAKEN = (
    "multipart/form-data (field `file`), an image body (Content-Type image/jpeg, image/png, ...) "
    "or application/json with image_base64"
)


@dataclass(frozen=True)
class Timeouts:
    total_s: float = defaults.HTTP_BODY_TIMEOUT_S  # the whole body
    idle_s: float = defaults.HTTP_BODY_IDLE_S  # silence between two chunks


@dataclass
class Upload:
    data: bytes | bytearray
    name: str  # stem + the extension of the sniffed format
    metadata: dict[str, str] = field(default_factory=dict)


async def read_upload(request: Request, max_image_bytes: int, timeouts: Timeouts = Timeouts()) -> Upload:
    """The upload in `request`; ApiError 400 (malformed), 408 (too slow), 413 (too large),
    415 (not an image)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = _body(request, timeouts)
    if kind == "multipart/form-data":
        data, name, metadata = await _multipart(request, body, max_image_bytes)
    elif kind == "application/json":
        data, name, metadata = await _json(request, body, max_image_bytes)
    elif kind.startswith("image/") or kind == "application/octet-stream":
        data = await _capped_bytes(body, max_image_bytes, max_image_bytes)
        name, metadata = request.query_params.get("filename", UNNAMED), {}
    else:
        raise ApiError(415, f"Content-Type {kind or '(none)'} is not one the API takes: send {TAKEN}")
    if not data:
        raise ApiError(400, "the image is empty (0 bytes): send the image's bytes")
    extension = image_extension(bytes(data[:64]))
    if extension is None:
        raise ApiError(
            415,
            f"the bytes of {name!r} are not an image the pipeline reads (JPEG, PNG, GIF, "
            "BMP, WebP, TIFF, JPEG 2000, AVIF, PNM, ...): send the image file itself",
        )
    check_date_time("captured_at", check_metadata(metadata).get("captured_at"))  # the body's own, as sent
    metadata = {**metadata, **{k: request.query_params[k] for k in QUERY_METADATA if k in request.query_params}}
    check_date_time("captured_at", metadata.get("captured_at"))
    return Upload(data, f"{image_stem(name)}.{extension}", metadata)


def refuse_declared_size(request: Request, max_image_bytes: int) -> None:
    """413 before reading anything when Content-Length already says the body is too large."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _body_limit(request, max_image_bytes):
        raise _too_large(max_image_bytes, int(declared))


def _body_limit(request: Request, max_image_bytes: int) -> int:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return -(-max_image_bytes // 3) * 4 + ENVELOPE_BYTES  # base64: 4 characters per 3 bytes
    return max_image_bytes + (ENVELOPE_BYTES if kind == "multipart/form-data" else 0)


def _too_large(max_image_bytes: int, size: int | None = None) -> ApiError:
    seen = f"{size} bytes" if size is not None else "more than that"
    return ApiError(
        413,
        f"the upload is over the {max_image_bytes}-byte limit ({seen}): send a smaller "
        "image, or start the server with a larger --max-image-bytes",
    )


async def _body(request: Request, timeouts: Timeouts) -> AsyncGenerator[bytes, None]:
    """The request body, chunk by chunk; 408 when it does not come within `timeouts`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeouts.total_s
    chunks = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), max(0.0, min(timeouts.idle_s, deadline - loop.time())))
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise ApiError(
                408,
                f"the upload did not arrive within {timeouts.total_s:g} s (or paused over "
                f"{timeouts.idle_s:g} s): send the body without pausing, or start the server "
                "with a larger --body-timeout-s",
                {"Connection": "close"},
            ) from None
        yield chunk


async def _capped(body: AsyncIterator[bytes], limit: int, max_image_bytes: int) -> AsyncGenerator[bytes, None]:
    """The body, chunk by chunk; 413 as soon as more than `limit` bytes came in."""
    total = 0
    async for chunk in body:
        total += len(chunk)
        if total > limit:
            raise _too_large(max_image_bytes)
        yield chunk


async def _capped_bytes(body: AsyncIterator[bytes], limit: int, max_image_bytes: int) -> bytearray:
    """The whole (capped) body, in one buffer grown by what actually arrives: no second copy
    of the image is made (32 uploads of 20 MB in flight add up), and a Content-Length a client
    only claims reserves nothing."""
    buffer = bytearray()
    async for chunk in _capped(body, limit, max_image_bytes):
        buffer += chunk
    return buffer


async def _multipart(
    request: Request, body: AsyncIterator[bytes], max_image_bytes: int
) -> tuple[bytes | bytearray, str, dict]:
    limit = max_image_bytes + ENVELOPE_BYTES
    parser = MultiPartParser(request.headers, _capped(body, limit, max_image_bytes), max_files=1, max_fields=8)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, f"malformed multipart form ({exc.message}): send the image in one field `file`") from exc
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "the multipart form has no file field `file`: send the image as `-F file=@photo.jpg`")
        _refuse_other_fields(form.keys(), MULTIPART_FIELDS, "the multipart form")
        data = await upload.read()
        if len(data) > max_image_bytes:
            raise _too_large(max_image_bytes, len(data))
        raw = form.get("metadata")
        metadata = _metadata_object(_parse_json(raw, "the form field `metadata`")) if isinstance(raw, str) else {}
        return data, upload.filename or UNNAMED, metadata
    finally:
        await form.close()


async def _json(
    request: Request, raw: AsyncIterator[bytes], max_image_bytes: int
) -> tuple[bytes | bytearray, str, dict]:
    body = _parse_json(
        await _capped_bytes(raw, _body_limit(request, max_image_bytes), max_image_bytes), "the JSON body"
    )
    if not isinstance(body, dict) or not isinstance(body.get("image_base64"), str):
        raise ApiError(
            400, 'the JSON body has no string "image_base64": send {"image_base64": "<base64 of the image>"}'
        )
    _refuse_other_fields(body.keys(), JSON_FIELDS, "the JSON body")
    if not isinstance(body.get("filename", ""), str):
        raise ApiError(400, f"filename is a {type(body['filename']).__name__}, expected a string: send the file's name")
    try:
        data = base64.b64decode(body["image_base64"], validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "image_base64 is not valid base64: encode the image's bytes with standard base64") from None
    if len(data) > max_image_bytes:
        raise _too_large(max_image_bytes, len(data))
    filename = body.get("filename")
    name = filename if isinstance(filename, str) else UNNAMED
    return data, name, _metadata_object(body.get("metadata", {}))


def _parse_json(raw: bytes | bytearray | str, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"{what} is not valid JSON ({exc}): send a JSON object") from None


def _metadata_object(value) -> dict:
    if not isinstance(value, dict):
        raise ApiError(
            400,
            f'metadata is a {type(value).__name__}, expected an object of strings (e.g. {{"client_ref": "order-7"}})',
        )
    return value


def _refuse_other_fields(given, known: tuple[str, ...], where: str) -> None:
    other = sorted(set(given) - set(known))
    if other:
        raise ApiError(
            400,
            f"{where} has a field the API does not take ({', '.join(map(repr, other))}): send only {', '.join(known)}",
        )
