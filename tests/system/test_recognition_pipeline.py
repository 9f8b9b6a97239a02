"""Issue 24 through the real pipeline and commands: the embed stage in `faces run` (on by
default), `faces people` and `faces search` on what it stored (each starting the embedded server
on the state dir, as after `faces run`), erasure, and the switch off. The photos: data/astronaut.jpg
(one face) and data/group.jpg (four copies of the same face, made from that photo)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.pipeline import REPO, faces_cli, result_files

DATA = REPO / "data"


def _run(tmp_path: Path, *extra: str):
    where = ["--state-dir", str(tmp_path / "state"), "--storage", str(tmp_path / "storage")]
    done = faces_cli("run", str(DATA), "--no-visualize", *where, *extra)
    assert done.returncode == 0, done.stderr
    return where, result_files(tmp_path / "storage")


def _faces(results: dict, stem: str) -> list[dict]:
    [result] = [r for image_id, r in results.items() if image_id.startswith(stem + "-")]
    return result["faces"]


def test_faces_are_clustered_named_searched_and_erased(tmp_path):
    """`faces run`: every face gets a cluster, the four copies in one photo four different ones,
    and the astronaut's face joins one of them (the same person); descriptors only with
    --keep-descriptors. `faces people add` then names her stored faces in the result files
    without analysing again (one per photo), `faces search` finds her in group.jpg; her name in
    capitals enrols into her, saying so; `faces people split` moves her face in group.jpg out
    of her (its result file names her no more); `faces people remove` erases her: no result
    file names her any more."""
    where, results = _run(tmp_path, "--recognition", "--keep-descriptors")
    astronaut, group = _faces(results, "astronaut"), _faces(results, "group")
    assert [f["person"] for f in astronaut + group] == [None] * 5
    clusters = [f["cluster"] for f in astronaut + group]
    assert len(set(clusters[1:])) == 4  # never two faces of one photo in one cluster
    assert clusters[0] in clusters[1:]  # her face in the other photo joined one of them
    assert all(len(f["descriptor"]) == 128 for f in astronaut + group)

    enrolled = faces_cli("people", "add", "Eileen Collins", str(DATA / "astronaut.jpg"), *where[:4])
    assert enrolled.returncode == 0, enrolled.stderr
    assert "2 stored faces named now" in enrolled.stdout
    results = result_files(tmp_path / "storage")
    named = [f["person"]["name"] for f in _faces(results, "astronaut") + _faces(results, "group") if f["person"]]
    assert named == ["Eileen Collins"] * 2

    listed = json.loads(faces_cli("people", "list", "--json", "--named", *where[:4]).stdout)
    assert [(p["name"], p["faces"], p["references"]) for p in listed] == [("Eileen Collins", 2, 1)]
    found = json.loads(faces_cli("search", str(DATA / "group.jpg"), "--json", *where[:4]).stdout)
    assert [face["people"][0]["name"] for face in found["faces"]] == ["Eileen Collins"] * 4

    refused = faces_cli("people", "add", "Somebody", str(DATA / "group.jpg"), *where[:4])
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("choose one with --face 0 to --face 3 (the order `faces run` lists them)")

    again = faces_cli("people", "add", "EILEEN COLLINS", str(DATA / "astronaut.jpg"), *where[:4])
    assert "EILEEN COLLINS is Eileen Collins, enrolled already (names ignore case)" in again.stdout, again.stderr
    [(group_id, face)] = [
        (image_id, i)
        for image_id, r in result_files(tmp_path / "storage").items()
        if image_id.startswith("group-")
        for i, f in enumerate(r["faces"])
        if f["person"]
    ]
    split = faces_cli("people", "split", "eileen collins", f"{group_id}:{face}", *where[:4])
    assert split.returncode == 0 and split.stdout.startswith("1 face split off eileen collins into p-"), split.stderr
    assert not any(f["person"] for f in _faces(result_files(tmp_path / "storage"), "group"))

    removed = faces_cli("people", "remove", "Eileen Collins", "--yes", *where[:4])
    assert removed.returncode == 0, removed.stderr
    assert "Eileen" not in "".join(p.read_text() for p in (tmp_path / "storage").glob("*.json"))
    assert json.loads(faces_cli("people", "list", "--json", "--named", *where[:4]).stdout) == []


def test_recognition_off_computes_and_keeps_nothing(tmp_path):
    """--no-recognition: every face's person and cluster are null, the result names no embed
    model, and there is nobody to list: nothing was computed or kept."""
    where, results = _run(tmp_path, "--no-recognition")
    faces = [face for result in results.values() for face in result["faces"]]
    assert len(faces) == 5
    assert {(f["person"], f["cluster"]) for f in faces} == {(None, None)}
    assert all("embed" not in r["models"] for r in results.values())
    listed = faces_cli("people", "list", *where[:4])
    assert listed.stdout.startswith("nobody yet")
