"""Per-image timings: measured for each image where a stage works image by image (detect,
landmarks, cutting the faces for age/gender), and a named share of the batch where one call
serves the whole batch (the age/gender networks: `agegender_batch_share`, split by faces)."""

from __future__ import annotations

import cv2
import jsonschema
import pytest

from faces.consumers.agegender import AgeGenderStage
from faces.consumers.detect import DetectStage
from faces.consumers.landmarks import LandmarksStage
from faces.producer.files import job_for
from faces.schemas.result import build_result, load_schema, stage_ms
from faces.streams.outcomes import Delivery, Forward
from tests.images import DATA


def small_jpeg() -> bytes:
    """64x64 pixels of a photo: a few milliseconds of detection, and no face."""
    photo = cv2.imread(str(DATA / "astronaut.jpg"))
    ok, encoded = cv2.imencode(".jpg", cv2.resize(photo, (64, 64)))
    assert ok
    return encoded.tobytes()


def run_stage(stage, deliveries: list[Delivery]) -> list[Delivery]:
    """One batch through `stage`; the forwarded jobs as the next stage's deliveries."""
    outcomes = stage.handle(deliveries)
    assert all(isinstance(o, Forward) for o in outcomes), outcomes
    return [Delivery(d.entry_id, 1, o.job, d.image) for d, o in zip(deliveries, outcomes)]


@pytest.fixture(scope="module")
def batch_through_stages(default_detector, landmarker) -> tuple[dict, dict]:
    """(small image's job, group photo's job) after one batch of both through the real detect,
    landmarks and age/gender (bundled dlib networks) stages."""
    images = [("small.jpg", small_jpeg()), ("group.jpg", (DATA / "group.jpg").read_bytes())]
    deliveries = [Delivery(f"{i}-0", 1, job_for(name, data), data) for i, (name, data) in enumerate(images)]
    for stage in (DetectStage(default_detector), LandmarksStage(landmarker), AgeGenderStage(choice="dlib")):
        deliveries = run_stage(stage, deliveries)
    small, group = (d.job for d in deliveries)
    assert len(small["faces"]) == 0 and len(group["faces"]) == 4
    return small, group


def test_detect_and_landmarks_time_each_image_of_a_batch_on_its_own(batch_through_stages):
    """The 1200x800 group photo takes far longer to search than 64x64 pixels: before, both got
    the batch's average, to the hundredth of a millisecond."""
    small, group = (job["timings_ms"] for job in batch_through_stages)
    assert 0 < small["detect"] and 5 * small["detect"] < group["detect"], (small, group)
    assert small["landmarks"] < group["landmarks"], "four faces against none"


def test_age_gender_network_time_is_a_named_share_by_faces(batch_through_stages):
    """Cutting the faces is measured per image under `agegender`; the networks run once for the
    batch, and that time is shared by faces under `agegender_batch_share`: all of it to the
    photo with four faces, none to the image without one."""
    small, group = (job["timings_ms"] for job in batch_through_stages)
    assert small["agegender_batch_share"] == 0.0 and group["agegender_batch_share"] > 0
    assert small["agegender"] >= 0 and group["agegender"] > 0
    assert stage_ms(group, "agegender") == group["agegender"] + group["agegender_batch_share"]
    assert stage_ms(group, "detect") == group["detect"]
    assert set(small) == set(group) == {"detect", "landmarks", "agegender", "agegender_batch_share"}


def test_results_with_shared_timings_match_the_schema(batch_through_stages):
    schema = load_schema()
    for job in batch_through_stages:
        jsonschema.validate(build_result(job), schema)
    assert "batch_share" in schema["properties"]["timings_ms"]["description"]
