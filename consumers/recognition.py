"""Recognition as one process sees it: the people and the gallery kept in memory for exact
search (models/identify.py), caught up from Redis (streams/gallery.py) before each use, and the
decisions taken with the rules of models/identify.py. Used by the embed stage (each new photo's
faces), `faces people` and `faces search`, and the HTTP API.

With the server's vector index (`indexed`, streams/vectorindex.py) the nearest stored faces
come from it instead, so judging and searching need no copy of the gallery here (catch_up
with gallery=False); the people and their references, few, are still held in memory.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from faces.models.embed import DESCRIPTOR_DTYPE, DESCRIPTOR_SIZE
from faces.models.identify import CLUSTER_THRESHOLD, MATCH_THRESHOLD, Candidate, Descriptors, assign
from faces.streams import gallery, vectorindex
from faces.streams.gallery import FaceRecord, ImageFaces, Person

CATCH_UP_SLICE = 5000  # images read from Redis per round trip while catching up


def vector_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def vectors_of(raw: Sequence[bytes]) -> np.ndarray:
    if not raw:
        return np.zeros((0, DESCRIPTOR_SIZE), dtype=DESCRIPTOR_DTYPE)
    return np.frombuffer(b"".join(raw), dtype="<f4").reshape(len(raw), DESCRIPTOR_SIZE).astype(DESCRIPTOR_DTYPE)


@dataclass(frozen=True)
class Judgement:
    """Who one face is: a named person (`name` set) or an unnamed cluster, and how near."""

    label: str
    name: str | None
    distance: float | None

    def person(self) -> dict[str, Any] | None:
        """The face's `person` in a result: the named person, or None for a cluster."""
        if self.name is None:
            return None
        return {"id": self.label, "name": self.name, "distance": _rounded(self.distance)}

    def cluster(self) -> str | None:
        """The face's `cluster` in a result: the unnamed cluster, or None when named."""
        return self.label if self.name is None else None

    def fields(self) -> dict[str, Any]:
        """Both recognition fields of a face in a result."""
        return {"person": self.person(), "cluster": self.cluster()}


def _rounded(distance: float | None) -> float | None:
    return None if distance is None else round(float(distance), 4)


class Recognition:
    """The people (with their references) and the gallery, in memory; `catch_up` before use.
    `indexed`: the server's vector index is used and kept in step (vectorindex.prepare)."""

    def __init__(self, client: redis.Redis, *, indexed: bool = False) -> None:
        self.client = client
        self.indexed = indexed
        self.people: dict[str, Person] = {}
        self.references = Descriptors()  # group: "<person id>/<reference id>", label: person id
        self.gallery = Descriptors()  # group: image id, label: person or cluster id
        self._people_version = -1
        self._generation = -1
        self._sequence = 0

    def catch_up(self, *, with_gallery: bool = True) -> None:
        """Read what changed in Redis since the last call (all of it the first time): the
        people, and the gallery unless `with_gallery` is false (judging and searching with the
        vector index need none of it)."""
        version = gallery.people_version(self.client)
        if version != self._people_version:
            self.people = gallery.people(self.client, with_references=True)
            self.references = Descriptors()
            for person in self.people.values():
                for ref_id, raw in person.references.items():
                    self.references.replace(f"{person.id}/{ref_id}", vectors_of([raw]), [person.id])
            self._people_version = version
        if with_gallery:
            self._catch_up_gallery()

    def _catch_up_gallery(self) -> None:
        generation = gallery.gallery_generation(self.client)
        if generation != self._generation:
            self.gallery, self._sequence, self._generation = Descriptors(), 0, generation
        self._sequence, changed = gallery.changed_images(self.client, self._sequence)
        # In slices: loading a million faces at once would hold every record's reply in memory
        # at the same time (about 570 MB at 1M faces, bench/search_scale.py).
        for start in range(0, len(changed), CATCH_UP_SLICE):
            some = changed[start : start + CATCH_UP_SLICE]
            records = gallery.image_faces(self.client, some)
            for image_id in some:
                self._hold(image_id, records.get(image_id))

    def _hold(self, image_id: str, record: ImageFaces | None) -> None:
        if record is None:
            self.gallery.remove(image_id)
            return
        # Faces whose descriptor was erased (their person removed) take no part in search.
        kept = [(i, f) for i, f in enumerate(record.faces) if f.label is not None and f.vector]
        self.gallery.replace(
            image_id,
            vectors_of([f.vector for _, f in kept]),
            [f.label for _, f in kept if f.label is not None],
            positions=[i for i, _ in kept],
        )

    def name_of(self, label: str) -> str | None:
        person = self.people.get(label)
        return person.name if person is not None else None

    def corrections(self, image_ids: Sequence[str]) -> dict[str, dict[int, set[str]]]:
        """Per image, per face index, who the face was marked "not": for a batch, in one round trip."""
        return gallery.corrections(self.client, image_ids)

    def judge(
        self,
        image_id: str,
        vectors: np.ndarray,
        *,
        positions: Sequence[int] | None = None,
        refused: dict[int, set[str]] | None = None,
    ) -> list[Judgement]:
        """Who each face of one photo is (call `catch_up` first). Named people first; the faces
        none claims join the nearest unnamed cluster or start their own (created in Redis).
        `positions`: each descriptor's face index in the photo's result (0, 1, ... unless
        given); `refused`: the photo's corrections by face index, when read already
        (`corrections`, for a whole batch), else read here."""
        if refused is None:
            refused = self.corrections([image_id]).get(image_id, {})
        indexes = range(len(vectors)) if positions is None else positions
        not_them = [refused.get(i, set()) for i in indexes]
        named = assign([self.references.candidates(v, MATCH_THRESHOLD) for v in vectors], not_them)
        clusters: list[list[Candidate]] = []
        for vector, found in zip(vectors, named):
            if found is not None:
                clusters.append([])
                continue
            near = self._near_faces(image_id, vector)
            clusters.append([c for c in near if self.name_of(c.label) is None and c.label in self.people])
        joined = assign(clusters, not_them)
        alone = [i for i in range(len(vectors)) if named[i] is None and joined[i] is None]
        created = gallery.create_clusters(self.client, len(alone))
        for cluster_id in created:  # known here at once: the next photo of this batch may join it
            self.people[cluster_id] = Person(cluster_id, None, time.time())
        new_ids = iter(created)
        judgements = []
        for person, cluster in zip(named, joined):
            if person is not None:
                judgements.append(Judgement(person.label, self.name_of(person.label), person.distance))
            elif cluster is not None:
                judgements.append(Judgement(cluster.label, None, cluster.distance))
            else:
                judgements.append(Judgement(next(new_ids), None, None))
        return judgements

    def _near_faces(self, image_id: str, vector: np.ndarray) -> list[Candidate]:
        """The labels of the stored faces within CLUSTER_THRESHOLD of `vector`, nearest first,
        the photo's own faces left out: from the server's index when used, else exactly."""
        if not self.indexed:
            return self.gallery.candidates(vector, CLUSTER_THRESHOLD, skip_group=image_id)
        best: dict[str, float] = {}
        for n in vectorindex.nearest_checked(self.client, vector, vectorindex.CANDIDATES_ASKED):
            if n.image_id != image_id and n.distance < CLUSTER_THRESHOLD and n.label not in best:
                best[n.label] = n.distance
        return [Candidate(label, distance) for label, distance in best.items()]

    def nearest_faces(self, vector: np.ndarray, count: int) -> list[tuple[str, int, str, float]]:
        """The `count` stored faces nearest `vector`: (image id, face index, label, distance)."""
        if not self.indexed:
            return self.gallery.nearest_rows(vector, count)
        return [
            (n.image_id, n.face, n.label, n.distance) for n in vectorindex.nearest_checked(self.client, vector, count)
        ]

    def record(
        self,
        image_id: str,
        job_id: str,
        vectors: np.ndarray,
        judgements: Sequence[Judgement],
        submitted_at: float,
        *,
        positions: Sequence[int] | None = None,
        face_count: int | None = None,
    ) -> bool:
        """Store the photo's faces and who they are (this process's copy too), unless a newer
        submission of the image is stored already. `positions`: each descriptor's face index
        in the result, of `face_count` faces (the others, without a descriptor, are stored as
        such, so the gallery's face indexes are the result's). True when stored."""
        indexes = list(range(len(vectors)) if positions is None else positions)
        faces = [FaceRecord(b"", None, None)] * (len(vectors) if face_count is None else face_count)
        for index, vector, judgement in zip(indexes, vectors, judgements):
            faces[index] = FaceRecord(vector_bytes(vector), judgement.label, _rounded(judgement.distance))
        record = ImageFaces(job_id, tuple(faces))
        stored = gallery.record_image(self.client, image_id, record, submitted_at=submitted_at, indexed=self.indexed)
        if stored and self._generation != -1:  # a copy of the gallery is kept here: it too
            self._hold(image_id, record)
        return stored
