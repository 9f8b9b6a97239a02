"""The typed contracts (schemas/job.py) and the image-id format (schemas/formats.py) agree with
what the pipeline checks and writes: the event's validation, the result schema, the producer's
ids and the API's parameters. In-process, no Redis."""

from __future__ import annotations

import hashlib
import typing

from faces.ops.web import params
from faces.producer.files import image_id_for
from faces.schemas import events, formats
from faces.schemas.job import Face, FaceKey, Job
from faces.schemas.result import load_schema


def test_the_image_id_format_is_one_definition_shared_by_producer_schema_and_api():
    """The result schema's pattern ends in exactly IMAGE_ID_HASH_CHARS hex digits; the longest id
    the producer makes is IMAGE_ID_MAX_CHARS long and passes both the schema's pattern and the
    API's check; one letter more is refused by the API."""
    pattern = load_schema()["properties"]["image_id"]["pattern"]
    assert pattern.endswith(f"-[0-9a-f]{{{formats.IMAGE_ID_HASH_CHARS}}}$")
    sha = hashlib.sha256(b"x").hexdigest()
    longest = image_id_for("a" * 500 + ".jpg", sha)
    assert len(longest) == formats.IMAGE_ID_MAX_CHARS
    assert longest.endswith("-" + sha[: formats.IMAGE_ID_HASH_CHARS])
    assert formats.matches(pattern, longest)
    assert params.is_image_id(longest) and params.IMAGE_ID_MAX_CHARS == formats.IMAGE_ID_MAX_CHARS
    assert not params.is_image_id("a" + longest)
    assert not params.is_image_id(longest[:-1])  # one hex digit short


def test_the_typed_job_names_the_keys_the_event_checks_and_a_new_job_has():
    """Job's required keys are the ones events.decode requires, plus none it does not; a new
    job (with metadata) has exactly Job's keys; ImageInfo names every key of a new job's image."""
    required = set(Job.__required_keys__)
    assert required == set(events._REQUIRED)
    job = events.new_job(
        job_id="0" * 32, image_id="a-00000000", path="a.jpg", sha256="0" * 64, size=1, submitted_at=1.0,
        metadata={"k": "v"},
    )  # fmt: skip
    assert set(job) == set(Job.__required_keys__) | set(Job.__optional_keys__)
    image_keys = typing.get_type_hints(Job)["image"].__annotations__
    assert set(job["image"]) == set(image_keys)


def test_a_typed_face_names_the_result_schemas_face_fields():
    """Face's keys, and FaceKey's literals, are the face properties of result.schema.json."""
    schema_face = set(load_schema()["$defs"]["face"]["properties"])
    assert set(Face.__annotations__) == schema_face
    assert set(typing.get_args(FaceKey)) == schema_face


def test_the_person_id_format_is_the_one_people_are_given():
    """A result's person and cluster ids have the pattern streams/gallery.py gives new ids (the
    API checks ids against it too)."""
    from faces.streams.gallery import PERSON_ID_PATTERN, new_person_id

    face = load_schema()["$defs"]["face"]["properties"]
    person = next(option for option in face["person"]["oneOf"] if option["type"] == "object")
    assert person["properties"]["id"]["pattern"] == face["cluster"]["pattern"] == PERSON_ID_PATTERN
    assert formats.matches(PERSON_ID_PATTERN, new_person_id())
