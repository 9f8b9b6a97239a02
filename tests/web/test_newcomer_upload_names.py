"""Uploads without a file name (issue 26 item 4): each is kept, and shown, under its own image
id (upload-<8 hex>.<format>), never all as `upload.jpg`. A real `faces serve` on a real Redis;
no workers (the jobs stay on the images stream, where their paths are read)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import cv2
import numpy as np

from faces.schemas import events
from faces.streams import names
from faces.streams.reading import PAYLOAD_FIELD
from tests.api_server import start_api
from tests.images import DATA


def _published_paths(client) -> dict[str, str]:
    """image id -> the path its job carries, for every job on the images stream."""
    jobs = [events.decode(fields[PAYLOAD_FIELD]) for _, fields in client.xrange(names.IMAGES)]
    return {job["image_id"]: job["image"]["path"] for job in jobs}


def test_nameless_uploads_are_named_after_their_image_id(redis_url, redis_client, tmp_path):
    """A raw JPEG body, a raw PNG body and a JSON body, none naming its file, each get
    upload-<8 hex of its sha256>.<sniffed format> as their kept file's name, and keep the image
    id upload-<8 hex>; a named upload keeps its name."""
    jpeg = (DATA / "group.jpg").read_bytes()
    png = cv2.imencode(".png", np.full((40, 40, 3), 90, np.uint8))[1].tobytes()
    other_jpeg = jpeg + b"other bytes"
    api = start_api(redis_url, tmp_path)
    try:
        sent = [
            api.http.post("/v1/images", content=jpeg, headers={"Content-Type": "image/jpeg"}),
            api.http.post("/v1/images", content=png, headers={"Content-Type": "application/octet-stream"}),
            api.http.post("/v1/images", json={"image_base64": base64.b64encode(other_jpeg).decode()}),
            api.http.post("/v1/images", files={"file": ("group.jpg", jpeg, "image/jpeg")}),
        ]
    finally:
        api.stop()
    assert [r.status_code for r in sent] == [202] * 4, [r.text for r in sent]
    digest = {
        name: hashlib.sha256(data).hexdigest() for name, data in (("jpeg", jpeg), ("png", png), ("other", other_jpeg))
    }
    expected = {
        f"upload-{digest['jpeg'][:8]}": f"upload-{digest['jpeg'][:8]}.jpg",
        f"upload-{digest['png'][:8]}": f"upload-{digest['png'][:8]}.png",
        f"upload-{digest['other'][:8]}": f"upload-{digest['other'][:8]}.jpg",
        f"group-{digest['jpeg'][:8]}": "group.jpg",
    }
    assert [r.json()["image_id"] for r in sent] == list(expected)
    paths = _published_paths(redis_client)
    assert {image_id: Path(path).name for image_id, path in paths.items()} == expected
    for path in paths.values():
        assert Path(path).is_file() and Path(path).parent.parent == tmp_path / "uploads"
