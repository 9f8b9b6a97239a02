"""Schemathesis hooks of the OpenAPI fuzz run (tests/web/test_openapi_fuzz.py), loaded by the `st`
process through SCHEMATHESIS_HOOKS.

The document says an upload is a string of format `binary` (base64, format `byte`, in JSON)
and that bytes which are not an image answer 415: a schema cannot say "an image". So the
values of those two formats are real images here (a photo with a face, scaled down, as JPEG and
PNG, once more large enough for its face to be found, and the smallest JPEG, PNG, GIF and WebP
files), which the server must accept; anything
else the generator makes (wrong types, missing fields, bad parameters) is left to it."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import schemathesis
from hypothesis import strategies as st
from schemathesis.core.file_samples import MEDIA_TYPE_FILE_SAMPLES

PHOTO = Path(__file__).resolve().parents[1] / "data" / "astronaut.jpg"
SIDE_PX = 160  # small: the real workers analyse every upload the run makes
FACE_SIDE_PX = 192  # the smallest of the photo in which detection finds her face (not at 160)


def images() -> list[bytes]:
    pixels = cv2.imread(str(PHOTO))
    small = cv2.resize(pixels, (SIDE_PX, SIDE_PX), interpolation=cv2.INTER_AREA)
    encoded = [cv2.imencode(kind, small)[1].tobytes() for kind in (".jpg", ".png")]
    # One face: a photo /v1/people can enrol someone from, and /v1/search finds someone in.
    face = cv2.resize(pixels, (FACE_SIDE_PX, FACE_SIDE_PX), interpolation=cv2.INTER_AREA)
    return [*encoded, cv2.imencode(".jpg", face)[1].tobytes(), *MEDIA_TYPE_FILE_SAMPLES.values()]


IMAGES = images()
schemathesis.openapi.format("binary", st.sampled_from(IMAGES))
schemathesis.openapi.format("byte", st.sampled_from([base64.b64encode(i).decode() for i in IMAGES]))
