"""Decode once (issue 27): the detect stage decodes the photo and keeps the pixels around its
faces under the job's pixels key; landmarks and age/gender work on those, never on the bytes,
and get what faces.FaceAnalyzer gets from the whole photo. The key goes with the blob."""

from __future__ import annotations

import json

import pytest

from faces.api import FaceAnalyzer
from faces.consumers.agegender import AgeGenderStage
from faces.consumers.detect import DetectStage
from faces.consumers.landmarks import LandmarksStage
from faces.consumers.registry import build_stage
from faces.consumers.sink import SinkStage
from faces.models import regions
from faces.producer.files import job_for
from faces.streams import names, publishing
from faces.streams.outcomes import Delivery, Forward
from tests.consumer_threads import start, stop
from tests.images import DATA
from tests.waiting import wait_until

AGEGENDER = "dlib"  # the bundled networks: real ages offline
SAME = ("box", "score", "landmarks", "pose", "quality")  # exactly alike; ages and genders within rounding
PHOTOS = ("group.jpg", "astronaut.jpg")


@pytest.fixture(scope="module")
def expected() -> dict[str, dict]:
    """Each photo's result from the in-process API, which decodes the whole photo."""
    analyzer = FaceAnalyzer(agegender=AGEGENDER)
    return {name: analyzer.analyze((DATA / name).read_bytes()) for name in PHOTOS}


def same_analysis(stored: dict, expected: dict) -> None:
    """Boxes, scores, points, pose, quality exactly; ages and gender scores within rounding."""
    assert stored["status"] == expected["status"] == "ok"
    assert len(stored["faces"]) == len(expected["faces"]) > 0
    for ours, theirs in zip(stored["faces"], expected["faces"]):
        assert {k: ours[k] for k in SAME} == {k: theirs[k] for k in SAME}
        assert ours["age"] == pytest.approx(theirs["age"], abs=0.011)
        assert ours["gender"]["label"] == theirs["gender"]["label"]
        assert ours["gender"]["scores"] == pytest.approx(theirs["gender"]["scores"], abs=0.00011)


def test_later_stages_handed_only_the_kept_pixels_find_what_the_whole_photo_gives(
    expected, tmp_path, default_detector, landmarker
):
    """Detect forwards each job with its packed regions (within the bound); landmarks and
    age/gender handed those and no image bytes at all (nothing they could decode) give the
    API's boxes, points, pose, quality, ages and genders for every photo."""
    photos = {name: (DATA / name).read_bytes() for name in PHOTOS}
    deliveries = [Delivery(f"{i}-0", 1, job_for(name, data), data) for i, (name, data) in enumerate(photos.items())]
    detected = DetectStage(default_detector).handle(deliveries)
    assert all(isinstance(o, Forward) and o.pixels for o in detected), detected
    assert all(len(o.pixels) <= regions.MAX_PACKED_BYTES for o in detected)  # type: ignore[union-attr, arg-type]
    deliveries = [Delivery(d.entry_id, 1, o.job, None, o.pixels) for d, o in zip(deliveries, detected)]  # type: ignore[union-attr]
    for stage in (LandmarksStage(landmarker), AgeGenderStage(choice=AGEGENDER)):
        outcomes = stage.handle(deliveries)
        assert all(isinstance(o, Forward) and o.pixels is None for o in outcomes), outcomes
        deliveries = [Delivery(d.entry_id, 1, o.job, None, d.pixels) for d, o in zip(deliveries, outcomes)]  # type: ignore[union-attr]
    finished = SinkStage(storage=tmp_path).handle(deliveries)
    for name, outcome in zip(PHOTOS, finished):
        same_analysis(json.loads(outcome.result_json), expected[name])  # type: ignore[union-attr]


def test_bytes_deleted_after_detect_still_give_landmarks_and_ages_and_the_sink_releases_the_pixels(
    expected, tmp_path, redis_client, default_detector, landmarker
):
    """Through the real runtime and Redis: after detect committed the group photo (its pixels
    key written with the forward), its image bytes are deleted; every later stage (landmarks,
    age/gender, ..., the sink) still finishes it with the API's analysis (before issue 27 the landmarks stage
    dead-lettered it: ImageMissing), and the sink's commit deletes the pixels key."""
    data = (DATA / "group.jpg").read_bytes()
    job = job_for("/photos/group.jpg", data)
    publishing.publish_image(redis_client, job, data)
    detect = start(redis_client, DetectStage(default_detector), name="d1")
    wait_until(lambda: redis_client.xlen(names.DETECTED) == 1, timeout_s=60, what="detect forwarded the job")
    stop(*detect)
    assert redis_client.exists(names.pixels_key(job["job_id"])) == 1
    assert redis_client.delete(names.blob_key(job["job_id"])) == 1  # no stage after detect can decode now
    options = {"agegender": AGEGENDER, "storage": str(tmp_path)}
    later = [start(redis_client, build_stage(name, options), name=f"{name}-1") for name in names.STAGE_ORDER[1:]]
    wait_until(lambda: redis_client.xlen(names.RESULTS) == 1, timeout_s=120, what="the sink announced the job")
    for consumer in later:
        stop(*consumer)
    assert redis_client.xlen(names.DEAD_LETTERS) == 0
    [stored] = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    same_analysis(stored, expected["group.jpg"])
    assert redis_client.exists(names.pixels_key(job["job_id"]), names.blob_key(job["job_id"])) == 0
    assert redis_client.scard(names.INFLIGHT) == 0
