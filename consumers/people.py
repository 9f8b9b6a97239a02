"""What users do with people: enrol, rename, merge, remove, "this face is not X", look up a
person's faces, and search. Shared by `faces people` / `faces search` and the HTTP API.

Every change that alters who a stored face is also rewrites that face's `person` and `cluster`
fields in the stored results, in Redis and in the result files when the storage folder is at
hand, so that no result names someone who was renamed, merged or removed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis

from faces.consumers.recognition import Judgement, Recognition, vector_bytes, vectors_of
from faces.consumers.storage import inside, patch_if
from faces.errors import FacesError
from faces.models.decode import DEFAULT_MAX_PIXELS, decode_image
from faces.models.detect import Box, load_detector
from faces.models.embed import load_embedder
from faces.models.identify import MATCH_THRESHOLD, Candidate, assign
from faces.models.landmarks import load_landmarker
from faces.streams import gallery
from faces.streams.gallery import FaceRecord, ImageFaces, Person

NEAREST_FACES = 5  # stored faces a search lists per face of the photo


def reference_id(data: bytes | bytearray, face: int) -> str:
    """A reference face's id: its photo's sha256 (16 hex digits) and the face's index, so the
    same face of the same photo enrolled twice is one reference, whoever enrols it."""
    return f"{hashlib.sha256(data).hexdigest()[:16]}#{face}"


@dataclass(frozen=True)
class PhotoFaces:
    """The faces of a photo analysed here, outside the pipeline: boxes in the order a result
    lists them, and one descriptor each."""

    boxes: list[Box]
    vectors: np.ndarray


class Describer:
    """Detection, landmarks and descriptors in this process, for photos that do not go through
    the pipeline: the photos a person is enrolled from, and the photo searched with. The same
    models and defaults as the pipeline's stages, so a face gets the descriptor it gets there."""

    def __init__(self, landmarks: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.max_pixels = max_pixels
        self.detector = load_detector()
        self.landmarker = load_landmarker(choice=landmarks)
        self.embedder = load_embedder()

    def faces(self, data: bytes) -> PhotoFaces:
        """ImageDecodeError (with its reason) when the bytes are not a usable image."""
        pixels = decode_image(data, max_pixels=self.max_pixels).pixels
        boxes = [d.box for d in self.detector.detect([pixels])[0]]
        points = [face.points for face in self.landmarker.locate(pixels, boxes)]
        vectors = self.embedder.describe(self.embedder.chips(pixels, list(zip(boxes, points))))
        return PhotoFaces(boxes, vectors)


class PersonNotFound(FacesError, LookupError):
    http_status = 404

    def __init__(self, who: str):
        super().__init__(f"no person named {who!r} (or with that id): `faces people list` shows who there is")
        self.who = who


class FaceNotFound(FacesError, LookupError):
    http_status = 409  # the person exists; the face is not in the gallery (now): a conflict

    def __init__(self, image_id: str, face: int, message: str | None = None):
        super().__init__(message or f"image {image_id!r} has no face {face} in the gallery")


class FaceNotTheirs(FaceNotFound):
    """A face chosen to split off a person is not one of theirs."""

    def __init__(self, image_id: str, face: int, who: str, person_id: str):
        listed = f"`faces people show {person_id}` or GET /v1/people/{person_id}/faces lists them"
        super().__init__(image_id, face, f"image {image_id!r} face {face} is not one of {who}'s faces: {listed}")


@dataclass(frozen=True)
class PersonSummary:
    id: str
    name: str | None
    faces: int
    references: int


@dataclass(frozen=True)
class StoredFace:
    image_id: str
    face: int
    distance: float


@dataclass(frozen=True)
class FaceMatches:
    """What a search found for one face of the photo searched."""

    people: list[dict]  # {"id", "name", "distance"}, nearest first, within MATCH_THRESHOLD
    faces: list[dict]  # {"image_id", "face", "person", "cluster", "distance"}, nearest first


class People:
    """People operations on one Redis (and, when given, the folder of result files)."""

    def __init__(self, client: redis.Redis, storage: Path | None = None, *, indexed: bool = False) -> None:
        """`indexed`: the server's vector index is used for search and kept in step
        (streams/vectorindex.py prepare); the other operations read this process's copy of the
        gallery, loaded when first needed."""
        self.client = client
        self.storage = storage
        self.known = Recognition(client, indexed=indexed)

    # -- reading -------------------------------------------------------------------------

    def find(self, who: str) -> Person:
        """A person by id or by name (any case); PersonNotFound otherwise."""
        self.known.catch_up()
        if who in self.known.people:
            return self.known.people[who]
        person_id = gallery.person_by_name(self.client, who)
        if person_id is None or person_id not in self.known.people:
            raise PersonNotFound(who)
        return self.known.people[person_id]

    def summaries(self, *, named_only: bool = False) -> list[PersonSummary]:
        """Named people by name, then unnamed clusters by size (largest first)."""
        self.known.catch_up()
        counts = self.known.gallery.label_counts()
        found = [
            PersonSummary(p.id, p.name, counts.get(p.id, 0), len(p.references))
            for p in self.known.people.values()
            if (p.name is not None or not named_only) and (p.name is not None or counts.get(p.id))
        ]
        return sorted(found, key=lambda s: (s.name is None, (s.name or "").casefold(), -s.faces, s.id))

    def faces_of(self, person: Person) -> list[StoredFace]:
        """The stored faces judged to be `person`, by image id."""
        self.known.catch_up()
        rows = self.known.gallery.rows_labelled(person.id)
        records = gallery.image_faces(self.client, sorted({image_id for image_id, _ in rows}))
        faces = []
        for image_id, index in rows:
            record = records.get(image_id)
            distance = record.faces[index].distance if record is not None else None
            faces.append(StoredFace(image_id, index, distance if distance is not None else 0.0))
        return sorted(faces, key=lambda f: (f.image_id, f.face))

    def search(self, vectors: np.ndarray) -> list[FaceMatches]:
        """For each descriptor: the named people it matches and the nearest stored faces."""
        self.known.catch_up(with_gallery=not self.known.indexed)
        found = []
        for vector in vectors:
            people = [
                {"id": c.label, "name": self.known.name_of(c.label), "distance": round(c.distance, 4)}
                for c in self.known.references.candidates(vector, MATCH_THRESHOLD)
            ]
            faces = []
            for image_id, index, label, distance in self.known.nearest_faces(vector, NEAREST_FACES):
                name = self.known.name_of(label)
                faces.append(
                    {
                        "image_id": image_id,
                        "face": index,
                        "person": {"id": label, "name": name} if name is not None else None,
                        "cluster": label if name is None else None,
                        "distance": round(distance, 4),
                    }
                )
            found.append(FaceMatches(people, faces))
        return found

    # -- changing ------------------------------------------------------------------------

    def enrol(self, name: str, references: dict[str, np.ndarray]) -> tuple[Person, int]:
        """Enrol `name` (a new person, or more references for the person of that name) from
        `references` (reference id -> descriptor). Stored faces of unnamed clusters that match
        are named too, at most one per photo. Returns the person and how many stored faces were
        named. An existing name (in any case) gets the references and keeps its spelling;
        gallery.NameTaken only when another process gave the name meanwhile."""
        existing = gallery.person_by_name(self.client, name)
        descriptors = {ref: vector_bytes(v) for ref, v in references.items()}
        if existing is not None:  # names ignore case: "Alice" is the "alice" enrolled, name kept
            gallery.add_references(self.client, existing, descriptors)
            person_id = existing
        else:
            person_id = gallery.name_person(self.client, None, name, descriptors)
        self.known.catch_up()
        return self.known.people[person_id], self._claim_unnamed(person_id)

    def name_cluster(self, cluster_id: str, name: str) -> Person:
        """Naming an unnamed cluster enrols it: its faces become the person's references, and
        every stored result of them carries the name. gallery.NameTaken when the name is used."""
        self.known.catch_up()
        cluster = self.known.people.get(cluster_id)
        if cluster is None or cluster.name is not None:
            raise PersonNotFound(cluster_id)
        rows = self.known.gallery.rows_labelled(cluster_id)
        records = gallery.image_faces(self.client, sorted({image_id for image_id, _ in rows}))
        references = {
            f"{image_id}#{index}": records[image_id].faces[index].vector
            for image_id, index in rows
            if image_id in records
        }
        gallery.name_person(self.client, cluster_id, name, references)
        self.known.catch_up()
        self._rewrite_results(sorted(records))
        self._claim_unnamed(cluster_id)
        return self.known.people[cluster_id]

    def rename(self, who: str, new_name: str) -> Person:
        person = self.find(who)
        if person.name is None:
            return self.name_cluster(person.id, new_name)
        gallery.rename_person(self.client, person.id, person.name, new_name)
        self.known.catch_up()
        self._rewrite_results(sorted({image_id for image_id, _ in self.known.gallery.rows_labelled(person.id)}))
        return self.known.people[person.id]

    def merge(self, keep_who: str, gone_who: str) -> Person:
        """`gone`'s references and faces become `keep`'s; "not gone" corrections now mean
        "not keep"; `gone` is removed. In a photo holding faces of both, the nearer stays
        `keep` and the other starts a cluster of its own (never two faces of one person)."""
        keep, gone = self.find(keep_who), self.find(gone_who)
        if keep.id == gone.id:
            return keep
        gallery.add_references(self.client, keep.id, dict(gone.references))
        gallery.replace_in_corrections(self.client, gone.id, keep.id)
        moved = {image_id for image_id, _ in self.known.gallery.rows_labelled(gone.id)}
        records = gallery.image_faces(self.client, sorted(moved))
        for image_id, record in records.items():
            labels = [f.label for f in record.faces]
            if keep.id in labels and gone.id in labels:
                a, b = labels.index(keep.id), labels.index(gone.id)
                far = a if _distance(record.faces[a]) > _distance(record.faces[b]) else b
                [alone] = gallery.create_clusters(self.client, 1)
                labels[far] = alone
            labels = [keep.id if label == gone.id else label for label in labels]
            self._store_labels(image_id, record, labels)
        gallery.remove_person(self.client, gone.id, gone.name)
        self.known.catch_up()
        self._rewrite_results(sorted(records))
        return self.known.people[keep.id]

    def split(self, who: str, faces: Sequence[tuple[str, int]]) -> Person:
        """Faces (image id, face index) of `who` leave them for one new unnamed cluster, as a
        correction kept like "not": each is marked "not `who`" (no later decision gives it back,
        not even when its photo is analysed again), and a named person's references made from
        those faces are dropped (photos of whoever they are no longer match `who` through them).
        Returns the new cluster. FaceNotTheirs when a face is not one of `who`'s."""
        person = self.find(who)
        chosen = sorted(set(faces))
        records = gallery.image_faces(self.client, sorted({image_id for image_id, _ in chosen}))
        for image_id, face in chosen:
            record = records.get(image_id)
            if record is None or not 0 <= face < len(record.faces) or record.faces[face].label != person.id:
                raise FaceNotTheirs(image_id, face, person.name or person.id, person.id)
        [cluster] = gallery.create_clusters(self.client, 1)
        for image_id in records:
            moved = {face for i, face in chosen if i == image_id}
            for face in moved:
                gallery.add_correction(self.client, image_id, face, {person.id})
            record = records[image_id]
            labels = [cluster if i in moved else f.label for i, f in enumerate(record.faces)]
            distances = [None if i in moved else f.distance for i, f in enumerate(record.faces)]
            self._store_labels(image_id, record, labels, distances)
        gallery.remove_references(self.client, person.id, [f"{image_id}#{face}" for image_id, face in chosen])
        self.known.catch_up()
        self._rewrite_results(sorted(records))
        self._drop_empty_clusters()
        return self.known.people[cluster]

    def remove(self, who: str) -> int:
        """Erase a person: references, name, and the descriptors of every stored face judged to
        be them; their results' `person` fields become null. Returns the faces erased."""
        person = self.find(who)
        rows = self.known.gallery.rows_labelled(person.id)
        records = gallery.image_faces(self.client, sorted({image_id for image_id, _ in rows}))
        for image_id, record in records.items():
            faces = tuple(
                FaceRecord(b"", None, None) if f.label == person.id else f for f in record.faces
            )  # the descriptor is a trace of the person: erased, not only unlabelled
            self._store(image_id, ImageFaces(record.job_id, faces))
        gallery.remove_person(self.client, person.id, person.name)
        self.known.catch_up()
        self._rewrite_results(sorted(records))
        return len(rows)

    def not_this(self, image_id: str, face: int, who: str) -> Judgement:
        """Face `face` of `image_id` is not `who`: the correction is kept (every later
        decision about this face respects it) and the face starts a cluster of its own."""
        person = self.find(who)
        record = gallery.image_faces(self.client, [image_id]).get(image_id)
        if record is None or not 0 <= face < len(record.faces) or not record.faces[face].vector:
            raise FaceNotFound(image_id, face)
        gallery.add_correction(self.client, image_id, face, {person.id})
        labels = [f.label for f in record.faces]
        if labels[face] == person.id:
            [labels[face]] = gallery.create_clusters(self.client, 1)
            self._store_labels(image_id, record, labels)
            self.known.catch_up()
            self._rewrite_results([image_id])
            self._drop_empty_clusters()
        label = labels[face]
        return Judgement(label or "", self.known.name_of(label) if label else None, None)

    # -- helpers -------------------------------------------------------------------------

    def _claim_unnamed(self, person_id: str) -> int:
        """Stored faces of unnamed clusters near `person_id`'s references become theirs: per
        photo at most one (the nearest), never a face marked "not" them, never in a photo that
        has a face of theirs already."""
        person = self.known.people[person_id]
        best: dict[str, dict[int, float]] = {}
        for raw in person.references.values():
            for image_id, index, label, distance in self.known.gallery.within(vectors_of([raw])[0], MATCH_THRESHOLD):
                if self.known.name_of(label) is None:
                    faces = best.setdefault(image_id, {})
                    faces[index] = min(distance, faces.get(index, distance))
        if not best:
            return 0
        records = gallery.image_faces(self.client, sorted(best))
        refused = gallery.corrections(self.client, sorted(best))
        changed = []
        for image_id, near in best.items():
            record = records.get(image_id)
            if record is None or any(f.label == person_id for f in record.faces):
                continue
            not_them = refused.get(image_id, {})
            options: list[list[Candidate]] = [[] for _ in record.faces]
            for index, distance in near.items():
                options[index] = [Candidate(person_id, distance)]
            chosen = assign(options, [not_them.get(i, set()) for i in range(len(record.faces))])
            labels = [f.label for f in record.faces]
            distances: list[float | None] = [f.distance for f in record.faces]
            for index, pick in enumerate(chosen):
                if pick is not None:
                    labels[index], distances[index] = person_id, pick.distance
                    changed.append(image_id)
            self._store_labels(image_id, record, labels, distances)
        self.known.catch_up()
        self._rewrite_results(sorted(set(changed)))
        self._drop_empty_clusters()
        return len(changed)

    def _drop_empty_clusters(self) -> None:
        """Unnamed clusters left without a face (all named, moved or erased) are deleted."""
        counts = self.known.gallery.label_counts()
        empty = [p for p in self.known.people.values() if p.name is None and not counts.get(p.id)]
        for cluster in empty:
            gallery.remove_person(self.client, cluster.id, None)
        if empty:
            self.known.catch_up()

    def _store_labels(
        self,
        image_id: str,
        record: ImageFaces,
        labels: Sequence[str | None],
        distances: Sequence[float | None] | None = None,
    ) -> None:
        distances = distances if distances is not None else [f.distance for f in record.faces]
        faces = tuple(FaceRecord(f.vector, label, d) for f, label, d in zip(record.faces, labels, distances))
        self._store(image_id, ImageFaces(record.job_id, faces))

    def _store(self, image_id: str, record: ImageFaces) -> None:
        """Replace an image's record read by a people operation (not if another job's took its
        place meanwhile), the vector index's hashes with it."""
        gallery.record_image(self.client, image_id, record, expect_job=record.job_id, indexed=self.known.indexed)

    def _rewrite_results(self, image_ids: Sequence[str]) -> None:
        """Each image's stored results (Redis; the file when the storage folder is known) get
        the gallery's current `person`/`cluster` fields, if they are still of the same job."""
        records = gallery.image_faces(self.client, list(image_ids))
        for image_id in image_ids:
            record = records.get(image_id)
            if record is None:
                continue
            change = _with_people(record, self.known)
            gallery.patch_stored_result(self.client, image_id, change)
            if self.storage is not None:
                patch_if(inside(self.storage, f"{image_id}.json"), change)


def _distance(face: FaceRecord) -> float:
    return face.distance if face.distance is not None else 0.0


def _with_people(record: ImageFaces, known: Recognition):
    """A result patch: the faces' recognition fields as the gallery has them now; None (leave
    it) for a result of another job or with another number of faces."""

    def change(result: dict) -> dict | None:
        faces = result.get("faces") or []
        if result.get("job_id") != record.job_id or len(faces) != len(record.faces):
            return None
        for face, stored in zip(faces, record.faces):
            if stored.label is None:
                face.update({"person": None, "cluster": None})
            else:
                face.update(Judgement(stored.label, known.name_of(stored.label), stored.distance).fields())
        return result

    return change
