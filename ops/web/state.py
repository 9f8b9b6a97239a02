"""What every endpoint shares (the Redis client, the settings, the result follower, the
metrics), held on the app, and the two dependencies the routes declare: `api` and
`require_token`."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
from fastapi import Request

from faces.ops.metrics import ApiMetrics
from faces.ops.web.config import ServeConfig
from faces.ops.web.errors import ApiError
from faces.ops.web.follower import ResultFollower
from faces.ops.web.params import is_image_id

if TYPE_CHECKING:
    from faces.ops.web.admission import ReadingSlots, WaitingSlots


@dataclass
class Api:
    config: ServeConfig
    client: redis.Redis
    follower: ResultFollower
    metrics: ApiMetrics
    reading: ReadingSlots  # upload bodies being read (admission.py)
    waiting: WaitingSlots  # requests waiting for a result (?wait=)


def api(request: Request) -> Api:
    return request.app.state.api


def require_token(request: Request) -> None:
    """401 unless the request carries `Authorization: Bearer <token>` when a token is set."""
    token = api(request).config.token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(
            401,
            "missing or wrong API token: send the header `Authorization: Bearer <token>` "
            "with the server's FACES_API_TOKEN",
            {"WWW-Authenticate": "Bearer"},
        )


def checked_image_id(image_id: str) -> str:
    """404 for what cannot be an image id (it would never name a result)."""
    if not is_image_id(image_id):
        raise ApiError(
            404, f"{image_id!r} is not an image id (NAME-<8 hex digits>, as POST /v1/images answered): check the id"
        )
    return image_id
