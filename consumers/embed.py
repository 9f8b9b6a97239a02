"""Embed stage adapter: who is in the photo. Each face's 128-d descriptor is computed from the
landmarks already found (models/embed.py: its aligned chips cut per photo, the network run once
for the whole batch), then judged against the people and the faces stored before
(consumers/recognition.py) and recorded; each face of the result gets `person` (an enrolled
person, or null) and `cluster` (the unnamed cluster it joined, or null).

Recognition off (`--no-recognition`, FACES_RECOGNITION=off): the stage passes the jobs on
untouched, no model is loaded and nothing is computed or kept; `person` and `cluster` stay null.
Descriptors go into a result only when asked (`--keep-descriptors`). With the server's vector
index (FACES_VECTOR_INDEX auto, and the module on the server: streams/vectorindex.py) a worker
judges new faces by asking it, holding no copy of the gallery."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import redis

from faces.consumers.common import analyse_batch
from faces.consumers.recognition import Recognition
from faces.consumers.registry import Routed, routed
from faces.models.analysis import Photo, timed, timed_shared
from faces.models.decode import DEFAULT_MAX_PIXELS
from faces.models.detect import Box
from faces.models.embed import EMBED_MODEL, Embedder, load_embedder
from faces.schemas.job import Face
from faces.streams import vectorindex
from faces.streams.outcomes import Delivery, Forward, Outcome

STAGE = "embed"


@routed(STAGE)
@dataclass
class EmbedStage(Routed):
    embedder: Embedder | None  # None: recognition is off
    keep_descriptors: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    takes_pixels: bool = True  # the regions detect kept (models/regions.py): no decoding here
    vector_index: str = vectorindex.DEFAULT_MODE  # FACES_VECTOR_INDEX: "auto" or "off"
    recognition: Recognition | None = None  # attach(): needs the worker's Redis

    @property
    def needs_image(self) -> bool:
        return self.embedder is not None

    def attach(self, client: redis.Redis) -> None:
        """Called by the consumer runtime with its client: the people and the gallery live in
        the pipeline's Redis, read and written by this stage as it judges each face. Whether
        the server's vector index serves the judging is decided here, once."""
        if self.embedder is not None:
            self.recognition = Recognition(client, indexed=vectorindex.prepare(client, self.vector_index))

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        if self.embedder is None:
            return [Forward(delivery.job) for delivery in deliveries]
        return analyse_batch(deliveries, self.route.name, self.max_pixels, self._recognise)

    def _recognise(self, photos: Sequence[Photo]) -> None:
        assert self.embedder is not None and self.recognition is not None, "attach() first"
        chips, described = [], []
        for photo in photos:  # the chips are cut per image: timed per image
            with timed(photo.job, STAGE):
                faces = _described(photo.job["faces"])
                boxes_and_points = [
                    (Box(**face["box"]), [(x, y) for x, y in face.get("landmarks") or []]) for _i, face in faces
                ]
                chips.extend(self.embedder.chips(photo.pixels, boxes_and_points))
            described.append(faces)
        with timed_shared([photo.job for photo in photos], [len(faces) for faces in described], STAGE):
            vectors = self.embedder.describe(chips)
        # Once a batch: what other workers and `faces people` did (with the server's vector
        # index, the people only), and every photo's corrections in one round trip.
        self.recognition.catch_up(with_gallery=not self.recognition.indexed)
        refused = self.recognition.corrections([photo.job["image_id"] for photo in photos])
        start = 0
        for photo, faces in zip(photos, described):
            with timed(photo.job, STAGE):
                self._judge(photo, faces, vectors[start : start + len(faces)], refused.get(photo.job["image_id"], {}))
            start += len(faces)

    def _judge(
        self, photo: Photo, faces: list[tuple[int, Face]], vectors: np.ndarray, refused: dict[int, set[str]]
    ) -> None:
        assert self.recognition is not None
        job = photo.job
        positions = [index for index, _face in faces]
        judgements = self.recognition.judge(job["image_id"], vectors, positions=positions, refused=refused)
        self.recognition.record(
            job["image_id"],
            job["job_id"],
            vectors,
            judgements,
            job["submitted_at"],
            positions=positions,
            face_count=len(job["faces"]),
        )
        for (_index, face), vector, judgement in zip(faces, vectors, judgements):
            face["person"], face["cluster"] = judgement.person(), judgement.cluster()
            if self.keep_descriptors:
                face["descriptor"] = [round(float(x), 6) for x in vector]
        job["models"]["embed"] = EMBED_MODEL


def _described(faces: list[Face]) -> list[tuple[int, Face]]:
    """The faces a descriptor can be computed for, those with landmarks (68 or 5 points), each
    with its index in the result (the gallery keeps the result's indexes)."""
    return [(index, face) for index, face in enumerate(faces) if face.get("landmarks")]


def build(options: dict) -> EmbedStage:
    on = options.get("recognition", True)
    return EmbedStage(
        embedder=load_embedder() if on else None,
        keep_descriptors=bool(options.get("keep_descriptors", False)),
        max_pixels=options.get("max_pixels", DEFAULT_MAX_PIXELS),
        vector_index=options.get("vector_index") or vectorindex.DEFAULT_MODE,
    )
