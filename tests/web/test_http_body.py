"""The upload reader of the HTTP API (ops/web/body.py) on a real Starlette request: memory
follows the bytes that arrive, not the Content-Length a client claims."""

from __future__ import annotations

import asyncio
import tracemalloc

from starlette.requests import Request

from faces.ops.web.body import read_upload

CLAIMED = 1 << 30  # 1 GiB announced
SENT = b"\xff\xd8\xff\xe0" + b"x" * 4096  # a few KB actually sent (a JPEG's first bytes)


def request_claiming(length: int, body: bytes) -> Request:
    chunks = [body[i : i + 1024] for i in range(0, len(body), 1024)]

    async def receive() -> dict:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/images",
        "query_string": b"",
        "headers": [(b"content-type", b"image/jpeg"), (b"content-length", str(length).encode())],
    }
    return Request(scope, receive)


def test_a_claimed_length_reserves_no_memory():
    """A client announcing 1 GiB and sending 4 KB costs 4 KB: before, the reader zero-filled a
    buffer of the announced size (50 such connections held gigabytes)."""
    tracemalloc.start()
    try:
        upload = asyncio.run(read_upload(request_claiming(CLAIMED, SENT), max_image_bytes=2 * CLAIMED))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert bytes(upload.data) == SENT
    assert peak < 1 << 20, f"peak {peak} bytes for {len(SENT)} sent"
