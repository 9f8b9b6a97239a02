"""Recognition's records in Redis: every analysed face's descriptor and who it was judged to be
(the gallery), the people (named, or unnamed clusters), each named person's reference
descriptors, and the corrections users made ("this face is not X").

Every process that recognises or searches (embed workers, `faces people`, `faces search`, the
API) keeps its own copy in memory for exact search and catches up cheaply before each use:
- the gallery: each image's record carries a sequence number in GALLERY_CHANGES; a copy asks
  for the images changed after the last number it saw. An erasure bumps GALLERY_GENERATION
  instead, and a copy of an older generation loads everything again (erasures are rare, and
  an erased image then leaves no trace, not even its id).
- the people and their references: few, so any change bumps PEOPLE_VERSION and copies reload
  them whole.

Descriptors are stored as little-endian float32 bytes, DESCRIPTOR_BYTES per face.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import redis

from faces.errors import FacesError
from faces.schemas.result import dumps
from faces.streams import names, scripts
from faces.streams.groups import text

DESCRIPTOR_BYTES = 128 * 4  # 128 float32 (models/embed.py)
PERSON_ID_PREFIX = "p-"
PERSON_ID_BYTES = 6  # random bytes of an id, written as 12 hex digits
# What a person's id looks like (the API checks ids against it; result.schema.json states it too).
PERSON_ID_PATTERN = f"^{PERSON_ID_PREFIX}[0-9a-f]{{{2 * PERSON_ID_BYTES}}}$"


def new_person_id() -> str:
    return PERSON_ID_PREFIX + secrets.token_hex(PERSON_ID_BYTES)


def _pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _unpack(raw: bytes | str) -> Any:
    return msgpack.unpackb(raw, raw=False)


@dataclass(frozen=True)
class FaceRecord:
    """One analysed face: its descriptor, and the person or cluster it was judged to be."""

    vector: bytes
    label: str | None
    distance: float | None = None


@dataclass(frozen=True)
class ImageFaces:
    """The gallery's record of one image: the job it came from, its faces in result order."""

    job_id: str
    faces: tuple[FaceRecord, ...]

    def packed(self) -> bytes:
        """The faces, as stored (the job id is a field of its own)."""
        return _pack([{"vector": f.vector, "label": f.label, "distance": f.distance} for f in self.faces])

    @classmethod
    def unpacked(cls, raw: bytes, job_id: str) -> ImageFaces:
        faces = tuple(FaceRecord(f["vector"], f.get("label"), f.get("distance")) for f in _unpack(raw))
        return cls(job_id, faces)


@dataclass(frozen=True)
class Person:
    """A person: named (enrolled) or an unnamed cluster (`name` None)."""

    id: str
    name: str | None
    created_at: float
    references: dict[str, bytes] = field(default_factory=dict)  # reference id -> descriptor


# The faces' hashes of the server's vector index (streams/vectorindex.py), written in the same
# step as the image's record: face i of the image is the hash <base><i>, with `vector` and
# `label` when it has both (the index skips a hash without `vector`), so an image's hashes are
# contiguous and those past its faces are found without a search. The faces come as ARGV from
# `first` on: n, then a vector and a label per face ('' for none). `write` false: the image's
# hashes are deleted (a process not keeping the index in step leaves none behind to go stale,
# and no erased descriptor survives in one).
_INDEX_FACES = """
local function index_faces(base, image, first, write)
  local n = 0
  if write then
    n = tonumber(ARGV[first])
    for i = 0, n - 1 do
      local key, vector, label = base .. i, ARGV[first + 1 + 2 * i], ARGV[first + 2 + 2 * i]
      redis.call('DEL', key)
      if vector ~= '' and label ~= '' then
        redis.call('HSET', key, 'vector', vector, 'label', label, 'image', image, 'face', i)
      else
        redis.call('HSET', key, 'image', image, 'face', i)
      end
    end
  end
  local i = n
  while redis.call('DEL', base .. i) == 1 do i = i + 1 end
  return n
end
"""


def _index_args(record: ImageFaces | None) -> list:
    """The faces as _INDEX_FACES reads them: their count, then a vector and a label each."""
    faces = record.faces if record is not None else ()
    pairs = [(f.vector, f.label) if f.vector and f.label is not None else (b"", "") for f in faces]
    return [len(pairs), *[value for pair in pairs for value in pair]]


# The record is a hash: the faces (msgpack), the job and its submission time. A record is
# replaced only by a job submitted no earlier (a late, older job of the image leaves the newer
# one's faces alone, as the sink leaves its result), or by a change to the same job's record
# (`expect_job`: a people operation that read it). Then the image is noted as changed under the
# next sequence number: one step, so a copy that reads the sequence never misses a record. With
# the vector index kept (ARGV[6] '1'), the image's face hashes follow in the same step, and
# VECTOR_SYNCED moves on when it was at the previous number (no change missed the index).
_RECORD = (
    _INDEX_FACES
    + """
local old_at = redis.call('HGET', KEYS[1], 'submitted_at')
if ARGV[3] ~= '' and old_at and tonumber(old_at) > tonumber(ARGV[3]) then return 0 end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'job_id') ~= ARGV[5] then return 0 end
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'faces', ARGV[1], 'job_id', ARGV[4])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'submitted_at', ARGV[3]) end
redis.call('ZADD', KEYS[3], seq, ARGV[2])
local keep = ARGV[6] == '1'
index_faces(ARGV[7], ARGV[2], 8, keep)
if keep and tonumber(redis.call('GET', KEYS[4]) or '0') == seq - 1 then redis.call('SET', KEYS[4], seq) end
return seq
"""
)


def vector_base(image_id: str) -> str:
    """The prefix of an image's face hashes in the vector index: face i is `<base><i>`."""
    return f"{names.VECTOR_PREFIX}{image_id}#"


def record_image(
    client: redis.Redis,
    image_id: str,
    record: ImageFaces,
    *,
    submitted_at: float | None = None,
    expect_job: str | None = None,
    indexed: bool = False,
) -> bool:
    """Store (or replace) one image's faces: from the embed stage with its job's
    `submitted_at` (an older job's record never replaces a newer one's), or from a people
    operation with `expect_job`, the job of the record it read (nothing is written when another
    job's record took its place meanwhile). `indexed`: the vector index is kept in step (else
    the image's face hashes are deleted). True when written."""
    keys = [names.gallery_key(image_id), names.GALLERY_SEQUENCE, names.GALLERY_CHANGES, names.VECTOR_SYNCED]
    args = [
        record.packed(),
        image_id,
        repr(float(submitted_at)) if submitted_at is not None else "",
        record.job_id,
        expect_job or "",
        "1" if indexed else "0",
        vector_base(image_id),
        *_index_args(record),
    ]
    return int(scripts.call(client, _RECORD, keys, args)) > 0


# An image's face hashes made again from its record as read (ARGV[3]: the change number it was
# read at): nothing is written if the image changed since, as its writer kept them in step.
# Without a number and faces: the hashes are deleted.
_REINDEX = (
    _INDEX_FACES
    + """
if ARGV[3] ~= '' and tostring(redis.call('ZSCORE', KEYS[1], ARGV[2]) or '') ~= ARGV[3] then return -1 end
return index_faces(ARGV[1], ARGV[2], 4, ARGV[4] ~= '')
"""
)


def reindex_images(client: redis.Redis, image_ids: Sequence[str], changes: Mapping[str, int] | None = None) -> None:
    """Each image's face hashes made again from its record (`changes`: the change number each
    was read at; none: deleted, as for an image without record), each image in one step, all
    in one round trip."""
    records = image_faces(client, image_ids) if changes is not None else {}
    pipe = client.pipeline(transaction=False)
    for image_id in image_ids:
        seen = str((changes or {}).get(image_id, ""))
        record = records.get(image_id)
        args = [vector_base(image_id), image_id, seen, *(_index_args(record) if record else [""])]
        scripts.call(pipe, _REINDEX, [names.GALLERY_CHANGES], args)
    pipe.execute()


_WRITE_FACES = _INDEX_FACES + "\nreturn index_faces(ARGV[1], ARGV[2], 3, true)\n"


def index_faces(client: redis.Redis, image_id: str, record: ImageFaces) -> None:
    """Make the image's face hashes those of `record` at once (record_image does it in the
    same step as the record, `indexed`; this is for a record written without)."""
    scripts.call(client, _WRITE_FACES, [], [vector_base(image_id), image_id, *_index_args(record)])


def indexed_sequence(client: redis.Redis) -> int:
    raw = client.get(names.VECTOR_SYNCED)
    return int(raw) if raw is not None else 0


def note_indexed(client: redis.Redis, sequence: int) -> None:
    """Every change up to `sequence` is in the vector index (never moves back)."""
    scripts.call(client, _MAX, [names.VECTOR_SYNCED], [sequence])


_MAX = """
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


def image_faces(client: redis.Redis, image_ids: Sequence[str]) -> dict[str, ImageFaces]:
    """The records of `image_ids` that exist."""
    if not image_ids:
        return {}
    pipe = client.pipeline(transaction=False)
    for image_id in image_ids:
        pipe.hmget(names.gallery_key(image_id), ["faces", "job_id"])
    found = {}
    for image_id, (faces, job_id) in zip(image_ids, pipe.execute()):
        if faces is not None and job_id is not None:
            found[image_id] = ImageFaces.unpacked(faces, text(job_id))
    return found


def gallery_generation(client: redis.Redis) -> int:
    raw = client.get(names.GALLERY_GENERATION)
    return int(raw) if raw is not None else 0


def changed_images(client: redis.Redis, after: int) -> tuple[int, list[str]]:
    """(the newest sequence number, the images changed after `after`), oldest change first."""
    changes = changes_after(client, after)
    return (changes[-1][1] if changes else after), [image_id for image_id, _seq in changes]


def changes_after(client: redis.Redis, after: int) -> list[tuple[str, int]]:
    """(image id, the number of its last change) of the images changed after `after`, oldest first."""
    rows: list[tuple[bytes, float]] = list(
        client.zrangebyscore(names.GALLERY_CHANGES, f"({after}", "+inf", withscores=True)  # type: ignore[arg-type]
    )
    return [(text(member), int(score)) for member, score in rows]


def erase_images(client: redis.Redis, image_ids: Iterable[str]) -> int:
    """Remove images from the gallery, corrections included; every copy reloads. Returns how
    many records there were."""
    image_ids = list(image_ids)
    if not image_ids:
        return 0
    pipe = client.pipeline(transaction=True)
    pipe.delete(*[names.gallery_key(i) for i in image_ids])
    pipe.delete(*[names.corrections_key(i) for i in image_ids])
    pipe.zrem(names.GALLERY_CHANGES, *image_ids)
    pipe.incr(names.GALLERY_GENERATION)
    deleted = pipe.execute()[0]
    reindex_images(client, image_ids)  # no record left: their face hashes go too
    return int(deleted)


def people(client: redis.Redis, *, with_references: bool = False) -> dict[str, Person]:
    """Every person (named and unnamed clusters), by id."""
    rows = client.hgetall(names.PEOPLE)
    found = {}
    for raw_id, raw in rows.items():
        person_id, record = text(raw_id), _unpack(raw)
        found[person_id] = Person(person_id, record.get("name"), float(record.get("created_at", 0.0)))
    if with_references and found:
        ids = list(found)
        pipe = client.pipeline(transaction=False)
        for person_id in ids:
            pipe.hgetall(names.references_key(person_id))
        for person_id, refs in zip(ids, pipe.execute()):
            if refs:
                found[person_id].references.update({text(k): bytes(v) for k, v in refs.items()})
    return found


def people_version(client: redis.Redis) -> int:
    raw = client.get(names.PEOPLE_VERSION)
    return int(raw) if raw is not None else 0


def person_by_name(client: redis.Redis, name: str) -> str | None:
    raw = client.hget(names.PEOPLE_NAMES, name_key(name))
    return text(raw) if raw is not None else None


def name_key(name: str) -> str:
    """Names are unique regardless of case and surrounding spaces."""
    return name.strip().casefold()


class NameTaken(FacesError):
    http_status = 409

    def __init__(self, name: str):
        super().__init__(f"a person named {name!r} exists already")
        self.name = name


def create_clusters(client: redis.Redis, count: int) -> list[str]:
    """`count` new unnamed clusters; their ids."""
    ids = [new_person_id() for _ in range(count)]
    if ids:
        now = time.time()
        pipe = client.pipeline(transaction=True)
        pipe.hset(names.PEOPLE, mapping={i: _pack({"name": None, "created_at": now}) for i in ids})
        pipe.incr(names.PEOPLE_VERSION)
        pipe.execute()
    return ids


def name_person(client: redis.Redis, person_id: str | None, name: str, references: Mapping[str, bytes]) -> str:
    """Give `name` to person `person_id` (a cluster being named, or a new person when None) and
    add `references`. NameTaken when another person has the name."""
    person_id = person_id or new_person_id()
    if not client.hsetnx(names.PEOPLE_NAMES, name_key(name), person_id):
        if person_by_name(client, name) != person_id:
            raise NameTaken(name)
    created = client.hget(names.PEOPLE, person_id)
    created_at = _unpack(created).get("created_at", time.time()) if created is not None else time.time()
    pipe = client.pipeline(transaction=True)
    pipe.hset(names.PEOPLE, person_id, _pack({"name": name.strip(), "created_at": created_at}))
    if references:
        pipe.hset(names.references_key(person_id), mapping=dict(references))  # type: ignore[arg-type]  # redis-py's Mapping is invariant
    pipe.incr(names.PEOPLE_VERSION)
    pipe.execute()
    return person_id


def add_references(client: redis.Redis, person_id: str, references: Mapping[str, bytes]) -> None:
    if not references:
        return
    pipe = client.pipeline(transaction=True)
    pipe.hset(names.references_key(person_id), mapping=dict(references))  # type: ignore[arg-type]  # redis-py's Mapping is invariant
    pipe.incr(names.PEOPLE_VERSION)
    pipe.execute()


def remove_references(client: redis.Redis, person_id: str, reference_ids: Iterable[str]) -> int:
    """Drop some of a person's references (faces split off them); how many there were."""
    reference_ids = list(reference_ids)
    if not reference_ids:
        return 0
    pipe = client.pipeline(transaction=True)
    pipe.hdel(names.references_key(person_id), *reference_ids)
    pipe.incr(names.PEOPLE_VERSION)
    return int(pipe.execute()[0])


def rename_person(client: redis.Redis, person_id: str, old: str, new: str) -> None:
    """NameTaken when `new` belongs to someone else."""
    if name_key(old) != name_key(new) and not client.hsetnx(names.PEOPLE_NAMES, name_key(new), person_id):
        raise NameTaken(new)
    raw = client.hget(names.PEOPLE, person_id)
    record = _unpack(raw) if raw is not None else {"created_at": time.time()}
    record["name"] = new.strip()
    pipe = client.pipeline(transaction=True)
    if name_key(old) != name_key(new):
        pipe.hdel(names.PEOPLE_NAMES, name_key(old))
    pipe.hset(names.PEOPLE, person_id, _pack(record))
    pipe.incr(names.PEOPLE_VERSION)
    pipe.execute()


def remove_person(client: redis.Redis, person_id: str, name: str | None) -> None:
    """The person's record, name and references deleted (its faces are relabelled by the
    caller, in the gallery and in stored results)."""
    pipe = client.pipeline(transaction=True)
    pipe.hdel(names.PEOPLE, person_id)
    if name is not None:
        pipe.hdel(names.PEOPLE_NAMES, name_key(name))
    pipe.delete(names.references_key(person_id))
    pipe.incr(names.PEOPLE_VERSION)
    pipe.execute()


def corrections(client: redis.Redis, image_ids: Sequence[str]) -> dict[str, dict[int, set[str]]]:
    """Per image, per face index, the people and clusters that face was marked "not"."""
    if not image_ids:
        return {}
    pipe = client.pipeline(transaction=False)
    for image_id in image_ids:
        pipe.hgetall(names.corrections_key(image_id))
    found = {}
    for image_id, rows in zip(image_ids, pipe.execute()):
        if rows:
            found[image_id] = {int(k): set(_unpack(v)) for k, v in rows.items()}
    return found


def add_correction(client: redis.Redis, image_id: str, face: int, refused: set[str]) -> None:
    """Face `face` of `image_id` is none of `refused` (its earlier corrections kept)."""
    key = names.corrections_key(image_id)
    raw = client.hget(key, str(face))
    known = set(_unpack(raw)) if raw is not None else set()
    client.hset(key, str(face), _pack(sorted(known | refused)))


def replace_in_corrections(client: redis.Redis, old: str, new: str) -> None:
    """After a merge: every "not `old`" now means "not `new`" too."""
    for key in client.scan_iter(match=names.corrections_key("*"), count=1000):
        for face, raw in client.hgetall(key).items():
            refused = set(_unpack(raw))
            if old in refused:
                client.hset(key, face, _pack(sorted((refused - {old}) | {new})))


def patch_stored_result(client: redis.Redis, image_id: str, change: Callable[[dict], dict | None]) -> bool:
    """Apply `change` (the stored result in, the new one or None for "leave it" out) to the
    image's latest result in Redis, and to its job's own copy (the API's GET /v1/jobs), keeping
    their expiry. Optimistic: a result the sink writes meanwhile makes it read and try again,
    so a newer result is never overwritten with an older one. True when changed."""
    key = names.result_key(image_id)
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                if raw is None:
                    return False
                changed = change(json.loads(raw))
                if changed is None:
                    pipe.unwatch()
                    return False
                job_key = names.job_key(changed["job_id"])
                pipe.watch(job_key)
                own_copy = pipe.hexists(job_key, names.JOB_RESULT_FIELD)
                document = dumps(changed)
                pipe.multi()
                pipe.set(key, document, keepttl=True)
                if own_copy:
                    pipe.hset(job_key, names.JOB_RESULT_FIELD, document)
                pipe.execute()
                return True
            except redis.WatchError:
                continue
