"""The job and a face as typed structures: the shape of the `faces.job` event (schemas/events.py
packs and checks it) as every package reads it, so that the type checker sees each `job["..."]`.

A job is a plain dict on the wire (msgpack) and in memory; these TypedDicts only name its keys
and their types. Which stage fills which key is said beside each key: a key filled on the way
is present from its stage on (detect's faces, each stage's timings), which is why a face is
`total=False` and a job's per-stage maps start empty.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class ImageInfo(TypedDict, total=False):
    """What a job knows of its image."""

    path: str  # producer: the file's path (or the upload's name) as submitted
    sha256: str  # producer: the hex digest of the bytes (the last 8 digits end the image id)
    bytes: int  # producer: the size of the bytes
    width: int | None  # detect: the decoded image's size (None until then)
    height: int | None  # detect


class JobError(TypedDict):
    """Why a job failed (events.with_error); later stages pass it straight to the sink."""

    stage: str
    type: str
    message: str


class FaceBox(TypedDict):
    """A face's box in original-image pixels, (x, y) its top-left corner."""

    x: int
    y: int
    w: int
    h: int


class Gender(TypedDict):
    label: str  # "Woman" | "Man"
    confidence: float
    scores: dict[str, float]


class Face(TypedDict, total=False):
    """One face of a job, filled stage by stage; the result gives null to what no stage filled
    (schemas/result.py)."""

    box: FaceBox  # detect
    score: float  # detect: the detector's confidence
    landmarks: list[list[float]] | None  # landmarks: 68 points, or 5 with --landmarks 5
    pose: dict[str, float] | None  # landmarks: yaw, pitch, roll (None with 5 points)
    quality: dict[str, Any] | None  # landmarks: the crop's sharpness and exposure
    age: float | None  # agegender
    age_range: list[float] | None  # agegender: [low, high]
    gender: Gender | None  # agegender
    person: dict[str, Any] | None  # embed: {"id", "name", "distance"} of the enrolled person it is
    cluster: str | None  # embed: the unnamed cluster it joined when nobody enrolled matched
    descriptor: list[float]  # embed, with --keep-descriptors only: the 128 numbers


# A face's keys, for code that copies some of them by name (a replay keeps the earlier stages').
FaceKey = Literal[
    "box", "score", "landmarks", "pose", "quality", "age", "age_range", "gender", "person", "cluster", "descriptor"
]


class _JobOptional(TypedDict, total=False):
    start_stage: str  # producer: the first stage (detect unless a replay starts later)
    metadata: dict[str, str]  # producer: the submitter's own fields, only when it gave some


class Job(_JobOptional):
    """One image's job, the `faces.job` event. The producer makes it (events.new_job) with
    every key below; the stages fill `image`'s size, `faces`, and their own entries of
    `timings_ms`, `models` and `notes`; the sink turns it into the result."""

    schema: str  # producer: events.SCHEMA
    version: int  # producer: events.VERSION
    job_id: str  # producer: uuid4().hex, new for every submission (formats.JOB_ID_PATTERN)
    image_id: str  # producer: NAME-<8 hex digits of the sha256> (formats.image_id_pattern())
    image: ImageInfo  # producer; detect adds width and height
    submitted_at: float  # producer: epoch seconds
    faces: list[Face]  # detect adds them; landmarks and agegender fill them in
    timings_ms: dict[str, float]  # each stage: its milliseconds for this image
    models: dict[str, Any]  # each stage: the model or backend it used (None: could not)
    notes: dict[str, Any]  # each stage: remarks (weights missing, poses null with 5 points)
    error: JobError | None  # the stage that failed, or None
