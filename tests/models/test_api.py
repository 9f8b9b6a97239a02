"""The in-process API (faces/api.py): one photo in, the pipeline's result document out, with real
models. The pipeline's side is its real stage adapters run on one batch without Redis (as in
tests/runtime/test_timings.py), down to the sink's stored JSON."""

from __future__ import annotations

import json

import cv2
import jsonschema
import numpy as np
import pytest

import faces
from faces.api import FaceAnalyzer, default_analyzer
from faces.consumers.agegender import AgeGenderStage
from faces.consumers.detect import DetectStage
from faces.consumers.landmarks import LandmarksStage
from faces.consumers.sink import SinkStage
from faces.producer.files import job_for
from faces.schemas.result import load_schema
from faces.streams.outcomes import Delivery, Finish, Forward
from tests.images import DATA

GROUP = DATA / "group.jpg"
# The bundled networks: real ages offline, whatever DeepFace weights this machine holds.
AGEGENDER = "dlib"


def through_the_pipeline(storage, photos: dict[str, bytes], detector, landmarker) -> dict[str, dict]:
    """Each photo's result as the sink stores it, after one batch of all of them through the real
    detect, landmarks, age/gender and sink adapters; by photo name."""
    deliveries = [Delivery(f"{i}-0", 1, job_for(name, data), data) for i, (name, data) in enumerate(photos.items())]
    for stage in (DetectStage(detector), LandmarksStage(landmarker), AgeGenderStage(choice=AGEGENDER)):
        outcomes = stage.handle(deliveries)
        assert all(isinstance(o, Forward) for o in outcomes), outcomes
        deliveries = [Delivery(d.entry_id, 1, o.job, d.image) for d, o in zip(deliveries, outcomes)]
    finished = SinkStage(storage=storage).handle(deliveries)
    assert all(isinstance(o, Finish) for o in finished)
    stored = {
        name: json.loads((storage / f"{o.job['image_id']}.json").read_text()) for name, o in zip(photos, finished)
    }
    assert stored == {name: json.loads(o.result_json) for name, o in zip(photos, finished)}
    return stored


def analysis(result: dict) -> dict:
    """What a result says about its photo: without its ids, path, timestamps and measured
    milliseconds (which keys timings_ms has stays)."""
    kept = {k: v for k, v in result.items() if k not in ("job_id", "image_id", "submitted_at", "processed_at")}
    kept["image"] = {k: v for k, v in result["image"].items() if k != "path"}
    kept["timings_ms"] = sorted(result["timings_ms"])
    return kept


def without_ages(faces_: list[dict]) -> list[dict]:
    return [{k: v for k, v in face.items() if k not in ("age", "age_range", "gender")} for face in faces_]


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(agegender=AGEGENDER)


@pytest.fixture(scope="module")
def group_result(analyzer) -> dict:
    return analyzer.analyze(GROUP.read_bytes())


def test_analyze_finds_what_the_pipeline_stores_for_the_same_photo(
    group_result, tmp_path, default_detector, landmarker
):
    """Boxes, scores, 68 points, pose and quality alike; ages and gender scores alike within
    their rounding (the pipeline ran the networks once for a batch of two photos); the same
    models, notes and timings keys."""
    photos = {"group.jpg": GROUP.read_bytes(), "astronaut.jpg": (DATA / "astronaut.jpg").read_bytes()}
    stored = through_the_pipeline(tmp_path, photos, default_detector, landmarker)["group.jpg"]
    assert group_result["status"] == stored["status"] == "ok"
    assert len(group_result["faces"]) == 4
    assert without_ages(group_result["faces"]) == without_ages(stored["faces"])
    for ours, theirs in zip(group_result["faces"], stored["faces"]):
        assert ours["age"] == pytest.approx(theirs["age"], abs=0.011)
        assert ours["age_range"] == pytest.approx(theirs["age_range"], abs=0.011)
        assert ours["gender"]["label"] == theirs["gender"]["label"]
        assert ours["gender"]["scores"] == pytest.approx(theirs["gender"]["scores"], abs=0.00011)
    assert {k: v for k, v in analysis(group_result).items() if k != "faces"} == {
        k: v for k, v in analysis(stored).items() if k != "faces"
    }
    assert group_result["timings_ms"]["detect"] > 0 and group_result["timings_ms"]["agegender_batch_share"] > 0


def test_a_path_gives_what_its_bytes_give(analyzer, group_result):
    by_path = analyzer.analyze(GROUP)
    assert analysis(by_path) == analysis(group_result)
    assert by_path["image"]["path"] == str(GROUP)
    assert by_path["image_id"] == f"group-{by_path['image']['sha256'][:8]}"  # the pipeline's id
    assert by_path["job_id"] != group_result["job_id"]


def test_decoded_pixels_give_the_same_faces(analyzer, group_result):
    """cv2.imread's pixels are the ones the pipeline decodes: the same faces, to the digit."""
    result = analyzer.analyze(cv2.imread(str(GROUP)))
    assert result["status"] == "ok"
    assert result["faces"] == group_result["faces"]
    assert (result["image"]["width"], result["image"]["height"]) == (1200, 800)


def test_bad_bytes_give_the_error_result_the_pipeline_gives(analyzer, default_detector):
    """Not an exception: a result with status error and the pipeline's decode code."""
    result = analyzer.analyze(b"not an image")
    [outcome] = DetectStage(default_detector).handle(
        [Delivery("1-0", 1, job_for("x.jpg", b"not an image"), b"not an image")]
    )
    assert result["status"] == "error" and result["faces"] == []
    assert result["error"]["type"] == "not-an-image"
    assert result["error"] == outcome.job["error"]
    assert analyzer.analyze(b"")["error"]["type"] == "empty"


def test_pixels_that_are_not_bgr_images_are_refused(analyzer):
    with pytest.raises(ValueError, match="BGR uint8"):
        analyzer.analyze(np.zeros((8, 8), np.uint8))


def test_every_result_matches_the_result_schema(analyzer, group_result):
    schema = load_schema()
    for result in (group_result, analyzer.analyze(b"not an image"), analyzer.analyze(np.zeros((64, 64, 3), np.uint8))):
        jsonschema.validate(result, schema)


def test_an_analyzer_loads_its_models_once_for_every_photo(analyzer):
    models = (analyzer.detector, analyzer.landmarker, analyzer.agegender.backend)
    first = analyzer.analyze(np.zeros((64, 64, 3), np.uint8))
    second = analyzer.analyze(np.full((64, 64, 3), 255, np.uint8))
    assert all(
        now is then for now, then in zip((analyzer.detector, analyzer.landmarker, analyzer.agegender.backend), models)
    )
    assert first["status"] == second["status"] == "ok" and first["job_id"] != second["job_id"]


def test_analyze_keeps_one_analyzer_per_set_of_options():
    """faces.analyze makes its analyzer on the first call and uses it again on the next."""
    faces.analyze(b"not an image", agegender=AGEGENDER)
    misses = default_analyzer.cache_info().misses
    faces.analyze(np.zeros((64, 64, 3), np.uint8), agegender=AGEGENDER)
    assert default_analyzer.cache_info().misses == misses
    assert faces.analyze(b"\x89PNG\r\n\x1a\n", agegender=AGEGENDER)["error"]["type"] == "truncated"
