"""Recognition as one process sees it: the people and the gallery kept in memory for exact
search (models/identify.py), caught up from Redis (streams/gallery.py) before each use, and the
decisions taken with the rules of models/identify.py. Used by the embed stage (each new photo's
faces), `faces people` and `faces search`, and the HTTP API.
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
from faces.streams import gallery
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
    """The people (with their references) and the gallery, in memory; `catch_up` before use."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.people: dict[str, Person] = {}
        self.references = Descriptors()  # group: "<person id>/<reference id>", label: person id
        self.gallery = Descriptors()  # group: image id, label: person or cluster id
        self._people_version = -1
        self._generation = -1
        self._sequence = 0

    def catch_up(self) -> None:
        """Read what changed in Redis since the last call (all of it the first time)."""
        version = gallery.people_version(self.client)
        if version != self._people_version:
            self.people = gallery.people(self.client, with_references=True)
            self.references = Descriptors()
            for person in self.people.values():
                for ref_id, raw in person.references.items():
                    self.references.replace(f"{person.id}/{ref_id}", vectors_of([raw]), [person.id])
            self._people_version = version
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

    def judge(self, image_id: str, vectors: np.ndarray) -> list[Judgement]:
        """Who each face of one photo is (call `catch_up` first). Named people first; the faces
        none claims join the nearest unnamed cluster or start their own (created in Redis)."""
        refused_by_face = gallery.corrections(self.client, [image_id]).get(image_id, {})
        refused = [refused_by_face.get(i, set()) for i in range(len(vectors))]
        named = assign([self.references.candidates(v, MATCH_THRESHOLD) for v in vectors], refused)
        clusters: list[list[Candidate]] = []
        for vector, found in zip(vectors, named):
            if found is not None:
                clusters.append([])
                continue
            near = self.gallery.candidates(vector, CLUSTER_THRESHOLD, skip_group=image_id)
            clusters.append([c for c in near if self.name_of(c.label) is None and c.label in self.people])
        joined = assign(clusters, refused)
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

    def record(
        self, image_id: str, job_id: str, vectors: np.ndarray, judgements: Sequence[Judgement], submitted_at: float
    ) -> bool:
        """Store the photo's faces and who they are (this process's copy too), unless a newer
        submission of the image is stored already. True when stored."""
        faces = tuple(FaceRecord(vector_bytes(v), j.label, _rounded(j.distance)) for v, j in zip(vectors, judgements))
        record = ImageFaces(job_id, faces)
        stored = gallery.record_image(self.client, image_id, record, submitted_at=submitted_at)
        if stored:
            self._hold(image_id, record)
        return stored
