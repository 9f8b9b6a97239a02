"""`faces people ...` and `faces search`: the people recognition knows (enrol, list, show,
rename, merge, split, remove, "not this person") and who is in a photo.

They read and change what Redis stores, so they need no worker: on a laptop after `faces run`
they start the embedded server on the state dir for the command's duration
(ops/jobs/target.py `data_target`). Changes that alter who a stored face is rewrite the stored
results too, in Redis and in the --storage folder."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from faces import logs
from faces import settings as defaults
from faces.ops.cli.application import app, fail, usage
from faces.ops.cli.options import Landmarks, VectorIndex, with_settings
from faces.ops.cli.wording import count
from faces.ops.settings import AppSettings

people_app = typer.Typer(
    no_args_is_help=True, help="The people recognition knows: add, list, show, rename, merge, split, remove, not."
)
app.add_typer(people_app, name="people")

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of lines.")]
Name = Annotated[str, typer.Argument(metavar="NAME", help="A person's name (any case), or a cluster's id (p-...).")]
Photos = Annotated[list[Path], typer.Argument(metavar="PHOTO...", help="Photos of the person, one face each.")]
FaceIndex = Annotated[
    int | None,
    typer.Option(
        "--face",
        min=0,
        help="Which face of a photo with several (0, 1, ... in the order `faces run` lists them).",
    ),
]


@contextlib.contextmanager
def _people(settings: AppSettings, vector_index: str = defaults.VECTOR_INDEX) -> Iterator:
    """The People operations on this setup's Redis (searching with the server's vector index
    when `vector_index` allows and it has one); a missing person or a name in use is one line,
    exit 1."""
    from faces.consumers.people import FaceNotFound, People, PersonNotFound
    from faces.ops.jobs.target import data_target
    from faces.streams import vectorindex
    from faces.streams.gallery import NameTaken

    logs.configure(level="WARNING")
    with data_target(settings) as (_url, client):
        storage = settings.storage if settings.storage.is_dir() else None
        try:
            yield People(client, storage, indexed=vectorindex.prepare(client, vector_index))
        except (PersonNotFound, FaceNotFound, NameTaken) as exc:
            fail(str(exc))


def _faces_of_photo(describer, photo: Path):
    """The faces found in `photo`; one line, exit 2, when it is not a readable image."""
    from faces.models.decode import ImageDecodeError

    try:
        data = photo.read_bytes()
    except OSError as exc:
        usage(f"cannot read {photo}: {exc.strerror or exc}")
    try:
        return data, describer.faces(data)
    except ImageDecodeError as exc:
        usage(f"{photo} is not a usable image ({exc.reason}): give a JPEG, PNG or another photo `faces run` takes")


def _chosen_face(photo: Path, found: int, face: int | None) -> int:
    """The face to enrol from a photo: the only one, or the one --face names."""
    if found == 0:
        usage(f"{photo}: no face found; enrol from a photo where the face is seen from the front")
    if face is None and found > 1:
        usage(
            f"{photo}: {found} faces; choose one with --face 0 to --face {found - 1} (the order `faces run` lists them)"
        )
    index = face or 0
    if index >= found:
        usage(f"{photo}: --face {index}, but it has {count(found, 'face')} (--face 0 to {found - 1})")
    return index


@people_app.command("add")
@with_settings(output=False)
def people_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The person's name.")],
    photos: Photos,
    face: FaceIndex = None,
    landmarks: Landmarks = None,
    vector_index: VectorIndex = defaults.VECTOR_INDEX,
    *,
    settings: AppSettings,
) -> None:
    """Enrol a person from photos of them (one face each, or the one --face chooses). Stored
    faces of unnamed clusters that match are named too; a name that exists, in any case, gets
    more photos (and keeps its spelling)."""
    from faces.consumers.people import Describer, reference_id

    if not name.strip():
        usage("give the person a name that is not empty")
    describer = Describer(landmarks=landmarks)
    references = {}
    for photo in photos:
        data, found = _faces_of_photo(describer, photo)
        index = _chosen_face(photo, len(found.boxes), face)
        references[reference_id(data, index)] = found.vectors[index]
    with _people(settings, vector_index) as people:
        person, named = people.enrol(name, references)
    if person.name != name.strip():  # the same name in another case: one person, as enrolled first
        typer.echo(f"{name.strip()} is {person.name}, enrolled already (names ignore case); more photos added")
    typer.echo(
        f"{person.name} ({person.id}): {count(len(person.references), 'reference face')}; "
        f"{count(named, 'stored face')} named now"
    )


@people_app.command("list")
@with_settings(output=False)
def people_list(
    as_json: AsJson = False,
    named: Annotated[bool, typer.Option("--named", help="Named people only, no unnamed clusters.")] = False,
    vector_index: VectorIndex = defaults.VECTOR_INDEX,
    *,
    settings: AppSettings,
) -> None:
    """Named people, then the unnamed clusters of faces, largest first."""
    with _people(settings, vector_index) as people:
        summaries = people.summaries(named_only=named)
    if as_json:
        typer.echo(json.dumps([s.__dict__ for s in summaries], indent=1))
        return
    if not summaries:
        typer.echo("nobody yet: `faces people add NAME PHOTO` enrols someone")
    for summary in summaries:
        who = summary.name if summary.name is not None else "(unnamed)"
        typer.echo(f"{who}\t{summary.id}\t{count(summary.faces, 'face')}\t{count(summary.references, 'reference')}")


@people_app.command("show")
@with_settings(output=False)
def people_show(
    name: Name, as_json: AsJson = False, vector_index: VectorIndex = defaults.VECTOR_INDEX, *, settings: AppSettings
) -> None:
    """A person and every stored face judged to be them (image id, face, distance)."""
    with _people(settings, vector_index) as people:
        person = people.find(name)
        faces = people.faces_of(person)
    if as_json:
        shown = {
            "id": person.id,
            "name": person.name,
            "references": len(person.references),
            "faces": [f.__dict__ for f in faces],
        }
        typer.echo(json.dumps(shown, indent=1))
        return
    typer.echo(f"{person.name or '(unnamed)'} ({person.id}): {count(len(person.references), 'reference face')}")
    for face in faces:
        typer.echo(f"{face.image_id}\tface {face.face}\tdistance {face.distance:.3f}")


@people_app.command("rename")
@with_settings(output=False)
def people_rename(
    old: Name,
    new: Annotated[str, typer.Argument(metavar="NEW", help="The new name.")],
    vector_index: VectorIndex = defaults.VECTOR_INDEX,
    *,
    settings: AppSettings,
) -> None:
    """Rename a person, or name an unnamed cluster (by its id: it is enrolled from its faces)."""
    if not new.strip():
        usage("give a name that is not empty")
    with _people(settings, vector_index) as people:
        person = people.rename(old, new)
    typer.echo(f"{person.id} is {person.name}")


@people_app.command("merge")
@with_settings(output=False)
def people_merge(
    keep: Name, other: Name, vector_index: VectorIndex = defaults.VECTOR_INDEX, *, settings: AppSettings
) -> None:
    """Merge OTHER into KEEP (the same person under two names, or a cluster that is them)."""
    with _people(settings, vector_index) as people:
        person = people.merge(keep, other)
    typer.echo(f"{other} merged into {person.name or person.id}")


@people_app.command("remove")
@with_settings(output=False)
def people_remove(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", help="Really erase the person.")] = False,
    vector_index: VectorIndex = defaults.VECTOR_INDEX,
    *,
    settings: AppSettings,
) -> None:
    """Erase a person: name, reference faces, the descriptors of their stored faces, and the
    `person` fields of their stored results (Redis and --storage)."""
    if not yes:
        usage(f"remove erases {name} and every stored trace of them; repeat with --yes")
    with _people(settings, vector_index) as people:
        erased = people.remove(name)
    typer.echo(f"{name} removed; {count(erased, 'stored face')} erased")


@people_app.command("not")
@with_settings(output=False)
def people_not(
    image_id: Annotated[str, typer.Argument(metavar="IMAGE_ID", help="The image id, as its result names it.")],
    face: Annotated[int, typer.Argument(metavar="FACE", min=0, help="The face's index in the result.")],
    name: Name,
    vector_index: VectorIndex = defaults.VECTOR_INDEX,
    *,
    settings: AppSettings,
) -> None:
    """Say that face FACE of IMAGE_ID is not NAME: it leaves them, and no later decision gives
    it to them again."""
    with _people(settings, vector_index) as people:
        judgement = people.not_this(image_id, face, name)
    typer.echo(f"{image_id} face {face} is not {name}; now {judgement.name or judgement.label}")


def _face_ref(value: str) -> tuple[str, int]:
    """IMAGE_ID:FACE (as a result names the image, and the face's index in it)."""
    image_id, _sep, face = value.rpartition(":")
    if not image_id or not face.isdigit():
        raise typer.BadParameter(
            f"{value!r}: give IMAGE_ID:FACE, e.g. photo-1a2b3c4d:0 (`faces people show` lists them)"
        )
    return image_id, int(face)


@people_app.command("split")
@with_settings(output=False)
def people_split(
    name: Name,
    faces: Annotated[
        list[str],
        typer.Argument(
            metavar="IMAGE_ID:FACE...", help="The faces to move out, as `faces people show NAME` lists them."
        ),
    ],
    vector_index: VectorIndex = defaults.VECTOR_INDEX,
    *,
    settings: AppSettings,
) -> None:
    """Move faces out of a person or cluster into a new unnamed cluster: they are not NAME, and
    no later decision gives them back (their photos analysed again included)."""
    chosen = [_face_ref(value) for value in faces]
    with _people(settings, vector_index) as people:
        cluster = people.split(name, chosen)
    typer.echo(f"{count(len(set(chosen)), 'face')} split off {name} into {cluster.id}")


@app.command()
@with_settings(output=False)
def search(
    photo: Annotated[Path, typer.Argument(metavar="PHOTO", help="The photo to look for people in.")],
    as_json: AsJson = False,
    landmarks: Landmarks = None,
    vector_index: VectorIndex = defaults.VECTOR_INDEX,
    *,
    settings: AppSettings,
) -> None:
    """Who is in PHOTO: for each face, the enrolled people it matches and the nearest stored faces."""
    from faces.consumers.people import Describer

    _data, found = _faces_of_photo(Describer(landmarks=landmarks), photo)
    with _people(settings, vector_index) as people:
        matches = people.search(found.vectors)
    faces = [
        {"face": i, "box": box.__dict__, "people": m.people, "nearest": m.faces}
        for i, (box, m) in enumerate(zip(found.boxes, matches))
    ]
    if as_json:
        typer.echo(json.dumps({"photo": str(photo), "faces": faces}, indent=1))
        return
    if not faces:
        typer.echo(f"{photo}: no face found")
    for face in faces:
        best = face["people"][0] if face["people"] else None
        who = f"{best['name']} (distance {best['distance']:.3f})" if best else "nobody enrolled"
        typer.echo(f"face {face['face']}: {who}; {count(len(face['nearest']), 'stored face')} near")
