"""Issue 24 review findings on the embed stage (consumers/embed.py), run in this process on a
real Redis with the real models: the gallery keeps each face under its index in the result even
when a face before it has no descriptor, corrections are found by that index, and a batch's
corrections are read in one round trip."""

from __future__ import annotations

import copy
import time
import uuid
from dataclasses import asdict

import pytest
import redis.connection

from faces.consumers.embed import EmbedStage
from faces.consumers.people import People
from faces.models.analysis import Photo
from faces.models.decode import decode_image
from faces.models.embed import load_embedder
from faces.streams import gallery, names
from tests.images import DATA


@pytest.fixture(scope="module")
def group(default_detector, landmarker):
    """data/group.jpg (four copies of one face): its pixels and its faces as the landmarks stage leaves them."""
    pixels = decode_image((DATA / "group.jpg").read_bytes()).pixels
    boxes = [d.box for d in default_detector.detect([pixels])[0]]
    points = [f.points for f in landmarker.locate(pixels, boxes)]
    faces = [{"box": asdict(b), "landmarks": [list(p) for p in pts]} for b, pts in zip(boxes, points)]
    assert len(faces) == 4
    return pixels, faces


@pytest.fixture(scope="module")
def embedder():
    return load_embedder()


def photo(pixels, faces, image_id: str) -> Photo:
    job = {
        "image_id": image_id,
        "job_id": uuid.uuid4().hex,
        "submitted_at": time.time(),
        "faces": copy.deepcopy(faces),
        "models": {},
        "timings_ms": {},
        "notes": {},
    }
    return Photo(job, pixels)  # type: ignore[arg-type]


def stage_on(client, embedder) -> EmbedStage:
    stage = EmbedStage(embedder=embedder)
    stage.attach(client)
    return stage


def test_gallery_face_indexes_are_the_results_when_a_face_has_no_landmarks(redis_client, group, embedder):
    """Photo A (four faces) starts four clusters; photo B, the same faces with the second one
    lacking landmarks, is recorded with four faces: faces 0, 2, 3 with descriptors and the
    clusters its result gives them (their twins' in A), face 1 with none and no cluster. Face 2
    marked "not" its cluster and B analysed again: face 2 leaves that cluster, faces 0 and 3
    keep theirs (the correction is found by the result's index, not the descriptor's)."""
    pixels, faces = group
    stage = stage_on(redis_client, embedder)
    first = photo(pixels, faces, "group-a")
    stage._recognise([first])
    clusters_a = [f["cluster"] for f in first.job["faces"]]
    assert len(set(clusters_a)) == 4

    without = copy.deepcopy(faces)
    without[1]["landmarks"] = None
    second = photo(pixels, without, "group-b")
    stage._recognise([second])
    result = second.job["faces"]
    record = gallery.image_faces(redis_client, ["group-b"])["group-b"]
    assert len(record.faces) == 4
    assert [f.label for f in record.faces] == [result[0]["cluster"], None, result[2]["cluster"], result[3]["cluster"]]
    assert record.faces[1].vector == b"" and all(record.faces[i].vector for i in (0, 2, 3))
    assert "cluster" not in result[1] and [result[i]["cluster"] for i in (0, 2, 3)] == [
        clusters_a[i] for i in (0, 2, 3)
    ]

    refused = clusters_a[2]
    assert refused is not None
    People(redis_client).not_this("group-b", 2, refused)
    again = photo(pixels, without, "group-b")
    stage._recognise([again])
    clusters_b = [f.get("cluster") for f in again.job["faces"]]
    assert clusters_b[2] != clusters_a[2] and [clusters_b[0], clusters_b[3]] == [clusters_a[0], clusters_a[3]]


def test_a_batch_reads_its_corrections_in_one_round_trip(redis_client, group, embedder, monkeypatch):
    """A batch of six photos (one face each) judged by the stage: the photos' corrections are
    read in one round trip (not one per photo), and the batch costs two round trips per photo
    and a constant few (the clusters made, the records written, the catch-up)."""
    pixels, faces = group
    stage = stage_on(redis_client, embedder)
    stage._recognise([photo(pixels, faces[:1], "warm-up")])  # the scripts loaded, the people read
    sent: list[bytes] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(self, command, check_health=True):
        sent.append(b"".join(command) if isinstance(command, list) else bytes(command))
        return send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    stage._recognise([photo(pixels, faces[:1], f"solo-{i}") for i in range(6)])
    monkeypatch.undo()
    corrections = names.corrections_key("").encode()
    assert sum(1 for trip in sent if corrections in trip) == 1
    assert len(sent) <= 2 * 6 + 4, len(sent)
