"""What `faces serve` was told: one frozen object, its defaults from faces/settings.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faces import settings as defaults


@dataclass(frozen=True)
class ServeConfig:
    redis_url: str
    uploads: Path = defaults.UPLOADS                  # uploaded images, kept for replay and pictures
    output: Path = defaults.OUTPUT                    # where the sink writes annotated pictures
    max_image_bytes: int = defaults.MAX_IMAGE_BYTES   # larger uploads: 413, refused while streaming
    wait_max_s: float = defaults.HTTP_WAIT_MAX_S      # the longest ?wait=
    high_water: int = defaults.HIGH_WATER             # 429 at this many images in flight (0: off)
    result_ttl_s: int = defaults.RESULT_TTL_S         # how long the API remembers an upload's job
    token: str | None = None                          # bearer token of /v1/* and /metrics (None: open)
