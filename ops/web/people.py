"""The people recognition knows, and who is in a photo, over HTTP (docs/http.md "People and
search"): the operations of `faces people ...` and `faces search` (consumers/people.py), with
their rules and wording.

Each API process keeps one People (its in-memory copy of the gallery, caught up from Redis
before each use) and one Describer (detection, landmarks and descriptors of the photos sent
here). The Describer's models load once, on the first request that needs them, in a worker
thread: never on the event loop, and never in a process that is not asked for them. Both are
used by one request at a time (their state is not for two threads), so requests of this kind
queue here; the event loop keeps answering everything else."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field, field_validator
from pydantic.config import JsonDict
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from faces.consumers.people import (
    Describer,
    FaceNotFound,
    FaceNotTheirs,
    People,
    PersonNotFound,
    PhotoFaces,
    reference_id,
)
from faces.models.decode import ImageDecodeError
from faces.ops.cli.wording import count
from faces.ops.web import images
from faces.ops.web.body import Timeouts, read_upload, refuse_declared_size
from faces.ops.web.document import error
from faces.ops.web.errors import ApiError
from faces.ops.web.examples import FACE_UPLOAD
from faces.ops.web.models import Strict
from faces.ops.web.state import Api, api, require_token
from faces.ops.web.views import ERRORS, status_url
from faces.schemas import formats
from faces.streams import gallery, vectorindex
from faces.streams.gallery import NameTaken, Person

router = APIRouter(dependencies=[Depends(require_token)])

# streams/gallery.py new_person_id: the prefix and 6 random bytes in hex.
PERSON_ID_PATTERN = gallery.PERSON_ID_PATTERN
NAME_MAX_CHARS = 120
# A name has a character other than white space (names are unique regardless of case and of
# the spaces around them: streams/gallery.py name_key).
NAME_SCHEMA: JsonDict = {"pattern": r"\S", "maxLength": NAME_MAX_CHARS}
LIST_HOW = "GET /v1/people lists them"
SPLIT_MAX_FACES = 1000  # faces one split moves (a larger correction is several requests)


# -- what the routes answer ----------------------------------------------------------------


class PersonSummary(Strict):
    id: str = Field(pattern=PERSON_ID_PATTERN)
    name: str | None = Field(description="null: an unnamed cluster of faces")
    faces: int = Field(ge=0, description="stored faces judged to be them")
    references: int = Field(ge=0, description="reference faces they were enrolled from")


class PeopleList(Strict):
    people: list[PersonSummary] = Field(description="named people by name, then unnamed clusters, largest first")


class StoredFace(Strict):
    image_id: str = Field(pattern=formats.image_id_pattern())
    face: int = Field(ge=0, description="the face's index in the image's result")
    distance: float = Field(description="to the person's references (0: the face a cluster started from)")
    result_url: str


class PersonFaces(Strict):
    id: str = Field(pattern=PERSON_ID_PATTERN)
    name: str | None
    faces: list[StoredFace] = Field(description="by image id, then face")


class PersonDetail(PersonFaces):
    references: int = Field(ge=0)


class Enrolled(Strict):
    person: PersonSummary
    face: int = Field(ge=0, description="the face of the photo that was enrolled")
    named: int = Field(ge=0, description="stored faces of unnamed clusters that now carry the name")


class PersonMatch(Strict):
    id: str
    name: str | None
    distance: float | None


class NotThisAnswer(Strict):
    image_id: str
    face: int
    person: PersonMatch | None = Field(description="who the face is now, when a named person")
    cluster: str | None = Field(description="the unnamed cluster the face is in now, otherwise")


class Match(Strict):
    id: str
    name: str | None = Field(description="null only for a cluster merged with an enrolled person")
    distance: float


class NearFace(Strict):
    image_id: str
    face: int
    person: dict[str, str] | None = Field(description='{"id", "name"} of a named person; null otherwise')
    cluster: str | None
    distance: float


class FoundFace(Strict):
    face: int
    box: dict[str, int] = Field(description="x, y, w, h in the photo's pixels")
    people: list[Match] = Field(description="enrolled people it matches, nearest first")
    nearest: list[NearFace] = Field(description="the nearest stored faces, nearest first")


class SearchAnswer(Strict):
    faces: list[FoundFace] = Field(description="the photo's faces, in the order a result lists them")


def _image_id(value: str) -> str:
    if not formats.is_image_id(value):
        raise ValueError("not an image id (NAME-<8 hex digits>, as POST /v1/images answered)")
    return value


class Rename(Strict):
    name: str = Field(json_schema_extra=NAME_SCHEMA, description="the new name")

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        return _checked_name(value)


class MergeOther(Strict):
    other: str = Field(json_schema_extra={"pattern": PERSON_ID_PATTERN}, description="the person merged into this one")


class NotThis(Strict):
    image_id: str = Field(
        json_schema_extra={"pattern": formats.image_id_pattern(), "maxLength": formats.IMAGE_ID_MAX_CHARS}
    )
    face: int = Field(ge=0, description="the face's index in the image's result")

    _checked_image_id = field_validator("image_id")(_image_id)


class SplitFaces(Strict):
    faces: list[NotThis] = Field(
        min_length=1,
        max_length=SPLIT_MAX_FACES,
        description="the faces to move out of this person, as GET /v1/people/{person_id}/faces lists them",
    )


def _checked_name(value: str) -> str:
    if not value.strip() or len(value) > NAME_MAX_CHARS:
        raise ValueError(f"a name has 1 to {NAME_MAX_CHARS} characters, not only spaces")
    return value


PersonIdPath = Annotated[
    str,
    Path(
        description=f"A person's id (p-<12 hex digits>, as {LIST_HOW}); 404 for anything else.",
        json_schema_extra={"pattern": PERSON_ID_PATTERN},
    ),
]
NameQuery = Annotated[
    str, Query(description="The person's name (any case).", examples=["Eileen Collins"], json_schema_extra=NAME_SCHEMA)
]
FaceQuery = Annotated[
    int | None,
    Query(ge=0, description="Which face of a photo with several (0, 1, ... in the order a result lists them)."),
]

# -- this process's People and Describer ------------------------------------------------------


class Recognizer:
    """The People and the Describer of this API process, one request at a time each."""

    def __init__(self, state: Api) -> None:
        self.state = state
        self._people: People | None = None  # made on first use, off the event loop
        self._people_lock = threading.Lock()
        self._describer: Describer | None = None
        self._describer_lock = threading.Lock()

    @contextlib.contextmanager
    def people(self) -> Iterator[People]:
        """The People, with the errors a client can act on as answers (404, 409)."""
        storage = self.state.config.storage
        with self._people_lock, _answers():
            if self._people is None:  # the server's vector index, when it has one and it is allowed
                indexed = vectorindex.prepare(self.state.client, self.state.config.vector_index)
                self._people = People(self.state.client, indexed=indexed)
            # Result files are rewritten when the folder exists (the sink may create it later).
            self._people.storage = storage if storage.is_dir() else None
            yield self._people

    def faces(self, data: bytes | bytearray) -> PhotoFaces:
        """The photo's faces; 422 when it is not a usable image. Loads the models the first time."""
        with self._describer_lock:
            if self._describer is None:
                self._describer = Describer(landmarks=self.state.config.landmarks)
            try:
                return self._describer.faces(bytes(data))
            except ImageDecodeError as exc:
                raise ApiError(
                    422,
                    f"the photo is not a usable image ({exc.reason}): send a JPEG, PNG or another photo "
                    "POST /v1/images takes",
                ) from None


_MAKING = threading.Lock()


def recognizer(request: Request) -> Recognizer:
    with _MAKING:
        found = getattr(request.app.state, "recognizer", None)
        if found is None:
            found = request.app.state.recognizer = Recognizer(api(request))
        return found


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    try:
        yield
    except PersonNotFound as exc:
        raise ApiError(404, f"no person {exc.who!r}: {LIST_HOW}") from None
    except FaceNotFound as exc:  # the person is there, the face is not: a conflict, not a 404 (the fuzzer's rule)
        raise ApiError(409, f"{exc}: the image id and face index are those of its result") from None
    except NameTaken as exc:
        raise ApiError(
            409, f"a person named {exc.name!r} exists already: pick another name, or merge the two"
        ) from None


def _person_id(person_id: str) -> str:
    if not formats.matches(PERSON_ID_PATTERN, person_id):
        raise ApiError(404, f"{person_id!r} is not a person id (p-<12 hex digits>): {LIST_HOW}")
    return person_id


def _summary(people: People, person: Person) -> PersonSummary:
    faces = people.known.gallery.label_counts().get(person.id, 0)
    return PersonSummary(id=person.id, name=person.name, faces=faces, references=len(person.references))


def _faces(people: People, person: Person) -> list[StoredFace]:
    return [StoredFace(**asdict(f), result_url=status_url(f.image_id)) for f in people.faces_of(person)]


async def _photo_faces(request: Request) -> tuple[bytes | bytearray, PhotoFaces]:
    """The uploaded photo and its faces, read and described as POST /v1/images reads uploads
    (the same limits, a reading slot while the bytes are held)."""
    state = api(request)
    config = state.config
    refuse_declared_size(request, config.max_image_bytes)
    async with state.reading.slot():
        upload = await read_upload(request, config.max_image_bytes, Timeouts(config.body_timeout_s, config.body_idle_s))
        found = await run_in_threadpool(recognizer(request).faces, upload.data)
    return upload.data, found


def chosen_face(found: int, face: int | None) -> int:
    """The face to enrol (`faces people add`'s rules): the only one, or the one `face` names."""
    if found == 0:
        raise ApiError(422, "the photo: no face found; enrol from a photo where the face is seen from the front")
    if face is None and found > 1:
        raise ApiError(
            422,
            f"the photo: {found} faces; choose one with ?face=0 to ?face={found - 1} (`--face` in "
            "`faces people add`; the order a result lists them)",
        )
    index = face or 0
    if index >= found:
        raise ApiError(422, f"the photo: ?face={index}, but it has {count(found, 'face')} (?face=0 to {found - 1})")
    return index


# -- the routes ---------------------------------------------------------------------------------

_UPLOAD: dict[str, Any] = images.REQUEST_BODY
# POST /v1/images's body, with an example photo that has a face.
PHOTO_BODY = {
    **_UPLOAD,
    "description": "The photo, in any form POST /v1/images takes, with its limits (--max-image-bytes: 413; "
    "not an image: 415); `metadata` is checked as there and not kept.",
    "content": {
        **_UPLOAD["content"],
        "application/json": {**_UPLOAD["content"]["application/json"], "example": FACE_UPLOAD},
    },
}
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {s: ERRORS[s] for s in (400, 408, 413, 415, 503)}
UNKNOWN = error(f"no such person ({LIST_HOW})")
PERSON = "/v1/people/{person_id}"


def _link(path: str, method: str, person: str = "person/id") -> dict[str, Any]:
    """From an answer to an operation on the person at `person` (a JSON pointer) in it."""
    pointer = "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method
    return {"operationRef": pointer, "parameters": {"person_id": f"$response.body#/{person}"}}


# From a search: "the first face's nearest stored face is not the person it matched".
NOT_NEAREST = {
    "image_id": "$response.body#/faces/0/nearest/0/image_id",
    "face": "$response.body#/faces/0/nearest/0/face",
}


ENROLLED_LINKS = {
    "Person": _link(PERSON, "get"),
    "Faces": _link(PERSON + "/faces", "get"),
    "Rename": _link(PERSON, "patch"),
    "Merge": _link(PERSON + "/merge", "post"),
    "NotThis": _link(PERSON + "/not", "post"),
    "Split": _link(PERSON + "/split", "post"),
    "Remove": _link(PERSON, "delete"),
}
UNUSABLE = error("the photo cannot be used: not a decodable image, or no face, or several and no ?face")
NAME_IN_USE = error("another person has that name")


@router.get("/v1/people", response_model=PeopleList, responses={503: ERRORS[503]})
def list_people(
    request: Request, named: Annotated[bool, Query(description="Named people only, no unnamed clusters.")] = False
) -> PeopleList:
    """Named people (by name), then the unnamed clusters of faces (largest first)."""
    with recognizer(request).people() as people:
        return PeopleList(people=[PersonSummary(**asdict(s)) for s in people.summaries(named_only=named)])


@router.post(
    "/v1/people",
    status_code=201,
    response_model=Enrolled,
    openapi_extra={"requestBody": PHOTO_BODY},
    responses={
        201: {
            "headers": {"Location": {"required": True, "schema": {"type": "string"}, "description": "the person"}},
            "links": ENROLLED_LINKS,
        },
        **UPLOAD_ERRORS,
        422: UNUSABLE,
    },
)
async def enrol(request: Request, name: NameQuery, face: FaceQuery = None) -> JSONResponse:
    """Enrol NAME from one photo of them (its only face, or the one ?face= chooses): a new person,
    or one more reference photo for the person of that name. Stored faces of unnamed clusters
    that match are named too."""
    name = _checked_query_name(name)
    data, found = await _photo_faces(request)
    index = chosen_face(len(found.boxes), face)
    reference = {reference_id(data, index): found.vectors[index]}

    def enrolling() -> Enrolled:
        with recognizer(request).people() as people:
            person, named = people.enrol(name, reference)
            return Enrolled(person=_summary(people, person), face=index, named=named)

    enrolled = await run_in_threadpool(enrolling)
    return JSONResponse(
        enrolled.model_dump(), status_code=201, headers={"Location": f"/v1/people/{enrolled.person.id}"}
    )


def _checked_query_name(name: str) -> str:
    try:
        return _checked_name(name)
    except ValueError as exc:
        raise ApiError(400, f"name={name!r}: {exc}") from None


@router.get("/v1/people/{person_id}", response_model=PersonDetail, responses={404: UNKNOWN, 503: ERRORS[503]})
def show_person(person_id: PersonIdPath, request: Request) -> PersonDetail:
    """A person and every stored face judged to be them."""
    with recognizer(request).people() as people:
        person = people.find(_person_id(person_id))
        return PersonDetail(
            id=person.id, name=person.name, references=len(person.references), faces=_faces(people, person)
        )


@router.get("/v1/people/{person_id}/faces", response_model=PersonFaces, responses={404: UNKNOWN, 503: ERRORS[503]})
def person_faces(person_id: PersonIdPath, request: Request) -> PersonFaces:
    """Every stored face judged to be the person: image id, face index, distance, result URL."""
    with recognizer(request).people() as people:
        person = people.find(_person_id(person_id))
        return PersonFaces(id=person.id, name=person.name, faces=_faces(people, person))


@router.patch(
    "/v1/people/{person_id}",
    response_model=PersonSummary,
    responses={404: UNKNOWN, 409: NAME_IN_USE, 503: ERRORS[503]},
)
def rename(person_id: PersonIdPath, change: Rename, request: Request) -> PersonSummary:
    """Rename a person, or name an unnamed cluster (it is enrolled from its faces)."""
    with recognizer(request).people() as people:
        return _summary(people, people.rename(_person_id(person_id), change.name))


@router.post(
    "/v1/people/{person_id}/merge",
    response_model=PersonSummary,
    responses={404: UNKNOWN, 409: error(f"no person `other` ({LIST_HOW})"), 503: ERRORS[503]},
)
def merge(person_id: PersonIdPath, other: MergeOther, request: Request) -> PersonSummary:
    """Merge `other` into this person (the same person under two names, or a cluster that is
    them): its references, faces and corrections become this person's; `other` is gone."""
    with recognizer(request).people() as people:
        keep = people.find(_person_id(person_id))
        try:  # this person is there, `other` is not: a conflict with what exists, not a 404
            people.find(other.other)
        except PersonNotFound:
            raise ApiError(409, f"no person {other.other!r} to merge into this one: {LIST_HOW}") from None
        return _summary(people, people.merge(keep.id, other.other))


@router.post(
    "/v1/people/{person_id}/split",
    response_model=PersonSummary,
    responses={
        200: {"description": "the new unnamed cluster", "links": {"Cluster": _link(PERSON, "get", "id")}},
        404: UNKNOWN,
        409: error(
            "a face that is not (or no longer) one of the person's: GET /v1/people/{person_id}/faces lists them"
        ),
        503: ERRORS[503],
    },
)
def split(person_id: PersonIdPath, chosen: SplitFaces, request: Request) -> PersonSummary:
    """Move faces out of this person (or cluster) into a new unnamed cluster, answered: a
    correction kept like "not this person", so no later decision gives them back, and a named
    person's references made from those faces are dropped."""
    with recognizer(request).people() as people:
        faces = [(face.image_id, face.face) for face in chosen.faces]
        try:
            return _summary(people, people.split(_person_id(person_id), faces))
        except FaceNotTheirs as exc:  # the person is there; the face is not theirs (now): a conflict
            raise ApiError(409, str(exc)) from None


@router.delete(
    "/v1/people/{person_id}",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "erased"}, 404: UNKNOWN, 503: ERRORS[503]},
)
def remove(person_id: PersonIdPath, request: Request) -> Response:
    """Erase a person: name, reference faces, the descriptors of their stored faces, and the
    `person` fields of their stored results (Redis and --storage)."""
    with recognizer(request).people() as people:
        people.remove(_person_id(person_id))
    return Response(status_code=204)


@router.post(
    "/v1/people/{person_id}/not",
    response_model=NotThisAnswer,
    responses={404: UNKNOWN, 409: error("no such face in the gallery"), 503: ERRORS[503]},
)
def not_this_person(person_id: PersonIdPath, face: NotThis, request: Request) -> NotThisAnswer:
    """Face `face` of `image_id` is not this person: it leaves them, and no later decision gives
    it to them again."""
    with recognizer(request).people() as people:
        judgement = people.not_this(face.image_id, face.face, _person_id(person_id))
    fields: dict[str, Any] = judgement.fields()
    return NotThisAnswer(image_id=face.image_id, face=face.face, **fields)


@router.post(
    "/v1/search",
    response_model=SearchAnswer,
    openapi_extra={"requestBody": PHOTO_BODY},
    responses={
        200: {
            "links": {"NotThis": {**_link(PERSON + "/not", "post", "faces/0/people/0/id"), "requestBody": NOT_NEAREST}}
        },
        **UPLOAD_ERRORS,
        422: error("not a decodable image"),
    },
)
async def search(request: Request) -> SearchAnswer:
    """Who is in the photo: for each face, its box, the enrolled people it matches and the
    nearest stored faces (image id, face index, distance)."""
    _data, found = await _photo_faces(request)

    def searching() -> SearchAnswer:
        with recognizer(request).people() as people:
            matches = people.search(found.vectors)
        faces = [
            FoundFace(
                face=i,
                box=asdict(box),
                people=[Match(**p) for p in m.people],
                nearest=[NearFace(**n) for n in m.faces],
            )
            for i, (box, m) in enumerate(zip(found.boxes, matches))
        ]
        return SearchAnswer(faces=faces)

    return await run_in_threadpool(searching)


# -- the methods a path does not take ---------------------------------------------------------

# Starlette's 405 names in `Allow` the methods of the first route of the path only: a path with
# a route per method (GET and POST /v1/people) would answer PUT with `Allow: GET`. These routes
# take every other standard method of those paths and answer 405 naming them all.
STANDARD_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")


def _refuse_other_methods(path: str, *allowed: str) -> None:
    allow = ", ".join(allowed)

    async def refuse() -> None:
        raise HTTPException(405, headers={"Allow": allow})

    others = [m for m in STANDARD_METHODS if m not in allowed]
    router.add_api_route(path, refuse, methods=others, include_in_schema=False, name=f"other methods of {path}")


_refuse_other_methods("/v1/people", "GET", "POST")
_refuse_other_methods(PERSON, "GET", "PATCH", "DELETE")
