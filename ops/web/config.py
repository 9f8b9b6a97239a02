"""What `faces serve` was told: one frozen object, its defaults from faces/settings.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faces import settings as defaults


@dataclass(frozen=True)
class ServeConfig:
    redis_url: str
    uploads: Path = defaults.UPLOADS  # uploaded images, kept for replay and pictures
    output: Path = defaults.OUTPUT  # where the sink writes annotated pictures
    storage: Path = defaults.STORAGE  # the result files that people changes rewrite (ops/web/people.py)
    max_image_bytes: int = defaults.MAX_IMAGE_BYTES  # larger uploads: 413, refused while streaming
    wait_max_s: float = defaults.HTTP_WAIT_MAX_S  # the longest ?wait=
    high_water: int = defaults.HIGH_WATER  # 429 at this many images in flight (0: off)
    result_ttl_s: int = defaults.RESULT_TTL_S  # how long the API remembers an upload's job
    token: str | None = None  # bearer token of /v1/* and /metrics (None: open)
    host: str = defaults.HTTP_HOST  # the bound address: a Host the API answers to
    allowed_hosts: tuple[str, ...] = ()  # more Host names it answers to ("*": any)
    uploads_reading: int = defaults.HTTP_UPLOADS_READING  # upload bodies read at once; more: 503
    body_timeout_s: float = defaults.HTTP_BODY_TIMEOUT_S  # a whole upload body: 408 past it
    body_idle_s: float = defaults.HTTP_BODY_IDLE_S  # silence between two chunks: 408 past it
    # Requests that may hold their connection waiting for a result (?wait=) at once: half the
    # connection limit, so waiters can never take every connection from probes and other clients.
    max_waiting: int = defaults.HTTP_MAX_CONNECTIONS // 2
    # Recognition (ops/web/people.py): the landmark set the deployment's stage uses (None: 68), so
    # enrolled and searched photos get the descriptors the pipeline gives; the vector index mode.
    landmarks: str | None = None
    vector_index: str = defaults.VECTOR_INDEX

    def answers_to(self) -> frozenset[str]:
        """The Host names (lower case, no port) the API answers to; "*" among them: any."""
        names = {self.host, *defaults.HTTP_LOOPBACK_HOSTS, *self.allowed_hosts}
        return frozenset(n.strip().strip("[]").lower() for n in names if n.strip() and n not in ("0.0.0.0", "::"))
