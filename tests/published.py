"""What the producers published to the images stream, as the producer tests read it."""

from __future__ import annotations

from pathlib import Path

from faces.schemas import events
from faces.streams import names
from faces.streams.reading import PAYLOAD_FIELD
from tests.images import DATA

PHOTO = (DATA / "astronaut.jpg").read_bytes()
OTHER = (DATA / "group.jpg").read_bytes()


def published(client) -> list[dict]:
    return [events.decode(f[PAYLOAD_FIELD]) for _, f in client.xrange(names.IMAGES)]


def published_names(client) -> list[str]:
    """The file names published, in stream order in stream order."""
    return [Path(j["image"]["path"]).name for j in published(client)]
