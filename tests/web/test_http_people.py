"""Issue 24 items 2 and 4 over HTTP (ops/web/people.py, docs/http.md "People and search"): enrol,
list, show, rename, merge, "not this person", search and erasure through a real `faces serve`
in front of a real Redis, with the rules and wording of `faces people` / `faces search`.

No stage workers: the people operations need only Redis. The photo already stored (data/group.jpg,
four copies of the astronaut's head) is recorded as the embed stage records a photo
(consumers/recognition.py), from descriptors computed in this process by the same models, with
its result in Redis and in the --storage folder, so that the API's rewrites of both are seen."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from faces.consumers.people import Describer
from faces.consumers.recognition import Recognition
from faces.models.identify import MATCH_THRESHOLD
from faces.schemas import formats
from faces.streams import names
from faces.streams.connection import connect
from faces.streams.embedded import EmbeddedRedis
from tests.api_server import Api, error_of, start_api, start_redis
from tests.images import DATA

JPEG = {"Content-Type": "image/jpeg"}
GROUP = (DATA / "group.jpg").read_bytes()
ASTRONAUT = (DATA / "astronaut.jpg").read_bytes()
GROUP_ID = formats.image_id("group", hashlib.sha256(GROUP).hexdigest())
GROUP_JOB = "0" * 31 + "1"


@dataclass
class People:
    redis: EmbeddedRedis
    client: redis.Redis
    api: Api
    storage: Path


@pytest.fixture(scope="module")
def people(tmp_path_factory) -> Iterator[People]:
    """Redis holding group.jpg's four faces as a stored photo (four unnamed clusters), and the
    API, in a deployment with FACES_LANDMARKS=5: the stage described the photo with the 5-point
    model, and so must the API (with the 68-point one each face is ~0.15 from its twin)."""
    folder = tmp_path_factory.mktemp("people")
    server = start_redis(folder)
    client = connect(server.url)
    storage = folder / "storage"
    storage.mkdir()
    _store_group_photo(client, storage, Describer(landmarks="5"))
    api = start_api(server.url, folder, env={"FACES_LANDMARKS": "5"})
    try:
        yield People(server, client, api, storage)
    finally:
        api.stop()
        client.close()
        server.stop()


def _store_group_photo(client: redis.Redis, storage: Path, describer: Describer) -> None:
    found = describer.faces(GROUP)
    recognition = Recognition(client)
    recognition.catch_up()
    judgements = recognition.judge(GROUP_ID, found.vectors)
    recognition.record(GROUP_ID, GROUP_JOB, found.vectors, judgements, submitted_at=time.time())
    result = {"image_id": GROUP_ID, "job_id": GROUP_JOB, "status": "ok", "faces": [j.fields() for j in judgements]}
    client.set(names.result_key(GROUP_ID), json.dumps(result))
    (storage / f"{GROUP_ID}.json").write_text(json.dumps(result))


def stored_names(people: People) -> list[list[str | None]]:
    """The person names of group.jpg's stored result: [in Redis, in the --storage file]."""
    documents = [people.client.get(names.result_key(GROUP_ID)), (people.storage / f"{GROUP_ID}.json").read_text()]
    return [[(f["person"] or {}).get("name") for f in json.loads(d)["faces"]] for d in documents]


def listed(http: httpx.Client, **params) -> dict[str | None, dict]:
    answer = http.get("/v1/people", params=params)
    assert answer.status_code == 200, answer.text
    return {p["name"] if p["name"] is not None else p["id"]: p for p in answer.json()["people"]}


def test_enrol_rename_merge_not_search_and_erase_through_the_api(people):
    """The whole life of a person over HTTP: first, each face of group.jpg searched is at
    distance 0 from its stored twin (the API describes with the deployment's 5 landmarks);
    enrolled from astronaut.jpg (201, and one stored face of group.jpg named at once, in Redis
    and the file); group.jpg refused without `face` (422 naming ?face= and --face) and taken
    with face=0 under her name in capitals (her reference added, her name as enrolled);
    no_face.jpg refused; listed with the
    three unnamed clusters (only her with named=true); a cluster named (409 for her name) and
    merged into her; her face marked "not her"; search finds her in every face of group.jpg;
    another cluster merged into her, then removal erases her (204, then 404, gone from the list,
    from search, from the results in Redis and the file, her stored face no longer searched);
    last, a cluster's face split off it (a face not its own: 409 naming it) goes to a new
    cluster and the emptied one is gone."""
    http = people.api.http
    twins = http.post("/v1/search", content=GROUP, headers=JPEG).json()["faces"]
    assert [f["nearest"][0]["distance"] for f in twins] == [0.0] * 4  # described with the stage's landmarks
    enrolled = http.post("/v1/people", params={"name": "Eileen Collins"}, content=ASTRONAUT, headers=JPEG)
    assert enrolled.status_code == 201, enrolled.text
    her = enrolled.json()["person"]
    assert enrolled.json()["face"] == 0 and enrolled.json()["named"] == 1
    assert her["name"] == "Eileen Collins" and her["references"] == 1 and her["faces"] == 1
    assert enrolled.headers["location"] == f"/v1/people/{her['id']}"
    assert [n.count("Eileen Collins") for n in stored_names(people)] == [1, 1]

    several = error_of(http.post("/v1/people", params={"name": "Eileen Collins"}, content=GROUP, headers=JPEG), 422)
    assert "4 faces" in several and "?face=0 to ?face=3" in several and "--face" in several
    second = http.post("/v1/people", params={"name": "EILEEN COLLINS", "face": 0}, content=GROUP, headers=JPEG)
    assert second.status_code == 201, second.text
    assert second.json()["person"]["id"] == her["id"] and second.json()["person"]["references"] == 2
    assert second.json()["person"]["name"] == "Eileen Collins"  # names ignore case: hers, as enrolled
    nobody = http.post("/v1/people", params={"name": "Cup"}, content=(DATA / "no_face.jpg").read_bytes(), headers=JPEG)
    assert "no face found" in error_of(nobody, 422)
    one = http.post("/v1/people", params={"name": "X", "face": 1}, content=ASTRONAUT, headers=JPEG)
    assert "?face=1, but it has 1 face (?face=0 to 0)" in error_of(one, 422)

    everyone = listed(http)
    clusters = [key for key in everyone if key != "Eileen Collins"]
    assert list(everyone)[0] == "Eileen Collins" and len(clusters) == 3
    assert all(everyone[c]["faces"] == 1 and everyone[c]["references"] == 0 for c in clusters)
    assert list(listed(http, named="true")) == ["Eileen Collins"]

    copy = clusters[0]
    assert "exists already" in error_of(http.patch(f"/v1/people/{copy}", json={"name": "EILEEN COLLINS"}), 409)
    named = http.patch(f"/v1/people/{copy}", json={"name": "Copy One"})
    assert named.status_code == 200 and named.json() == {"id": copy, "name": "Copy One", "faces": 1, "references": 1}
    renamed = http.patch(f"/v1/people/{her['id']}", json={"name": "Eileen M. Collins"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Eileen M. Collins"
    assert [sorted(filter(None, n)) for n in stored_names(people)] == [["Copy One", "Eileen M. Collins"]] * 2

    merged = http.post(f"/v1/people/{her['id']}/merge", json={"other": copy})
    assert merged.status_code == 200, merged.text
    # Two faces of one photo are never one person: the farther of the two starts a cluster.
    assert merged.json() == {"id": her["id"], "name": "Eileen M. Collins", "faces": 1, "references": 3}
    assert "GET /v1/people lists them" in error_of(http.get(f"/v1/people/{copy}"), 404)

    [face] = http.get(f"/v1/people/{her['id']}/faces").json()["faces"]
    assert face["image_id"] == GROUP_ID and face["result_url"] == f"/v1/results/{GROUP_ID}"
    shown = http.get(f"/v1/people/{her['id']}").json()
    assert shown["references"] == 3 and shown["faces"] == [face]
    not_her = http.post(f"/v1/people/{her['id']}/not", json={"image_id": GROUP_ID, "face": face["face"]})
    assert not_her.status_code == 200, not_her.text
    assert not_her.json()["person"] is None and not_her.json()["cluster"].startswith("p-")
    assert http.get(f"/v1/people/{her['id']}/faces").json()["faces"] == []
    assert "has no face 9" in error_of(
        http.post(f"/v1/people/{her['id']}/not", json={"image_id": GROUP_ID, "face": 9}), 409
    )

    found = http.post("/v1/search", content=GROUP, headers=JPEG)
    assert found.status_code == 200, found.text
    faces = found.json()["faces"]
    assert [f["face"] for f in faces] == [0, 1, 2, 3]
    assert all(
        f["people"][0]["name"] == "Eileen M. Collins" and f["people"][0]["distance"] < MATCH_THRESHOLD for f in faces
    )
    assert all({n["image_id"] for n in f["nearest"]} == {GROUP_ID} and len(f["nearest"]) == 4 for f in faces)
    assert min(f["box"]["w"] for f in faces) > 50

    again = http.post(f"/v1/people/{her['id']}/merge", json={"other": clusters[1]})
    assert again.status_code == 200 and again.json()["faces"] == 1  # a stored face of hers to erase
    assert [n.count("Eileen M. Collins") for n in stored_names(people)] == [1, 1]
    gone = http.delete(f"/v1/people/{her['id']}")
    assert gone.status_code == 204 and gone.content == b""
    assert "GET /v1/people lists them" in error_of(http.get(f"/v1/people/{her['id']}"), 404)
    assert "Eileen M. Collins" not in listed(http)
    [after] = http.post("/v1/search", content=ASTRONAUT, headers=JPEG).json()["faces"]
    assert after["people"] == [] and len(after["nearest"]) == 3  # her erased face is no longer searched
    assert all(n is None for n in stored_names(people)[0] + stored_names(people)[1])

    [alone] = http.get(f"/v1/people/{clusters[2]}/faces").json()["faces"]
    elsewhere = {"image_id": GROUP_ID, "face": (alone["face"] + 1) % 4}
    refused = http.post(f"/v1/people/{clusters[2]}/split", json={"faces": [elsewhere]})
    assert f"face {elsewhere['face']} is not one of {clusters[2]}'s faces" in error_of(refused, 409)
    split = http.post(
        f"/v1/people/{clusters[2]}/split", json={"faces": [{"image_id": GROUP_ID, "face": alone["face"]}]}
    )
    assert split.status_code == 200, split.text
    assert split.json()["name"] is None and split.json()["faces"] == 1 and split.json()["id"] != clusters[2]
    assert "GET /v1/people lists them" in error_of(http.get(f"/v1/people/{clusters[2]}"), 404)  # left empty: gone


def test_people_routes_need_the_token_refuse_other_sites_and_unknown_ids(people):
    """Every people route answers 401 without the token; the state-changing ones 403 from a page
    of another origin (before any work); an id that is not a person's is 404 naming how to list
    them; a name that is only spaces is 400; a method a path does not take is 405 naming every
    method it does take (Starlette names those of the path's first route only)."""
    routes = [
        ("GET", "/v1/people"),
        ("POST", "/v1/people?name=A"),
        ("GET", "/v1/people/p-000000000000"),
        ("GET", "/v1/people/p-000000000000/faces"),
        ("PATCH", "/v1/people/p-000000000000"),
        ("DELETE", "/v1/people/p-000000000000"),
        ("POST", "/v1/people/p-000000000000/merge"),
        ("POST", "/v1/people/p-000000000000/not"),
        ("POST", "/v1/people/p-000000000000/split"),
        ("POST", "/v1/search"),
    ]
    bare = httpx.Client(base_url=people.api.base)
    for method, path in routes:
        assert "Authorization: Bearer" in error_of(bare.request(method, path), 401)
        if method != "GET":
            foreign = people.api.http.request(method, path, headers={"Origin": "http://evil.example"})
            assert "cross-site requests are refused" in error_of(foreign, 403)
    http = people.api.http
    for path in ("/v1/people/p-000000000000", "/v1/people/Eileen", "/v1/people/p-000000000000/faces"):
        assert "GET /v1/people lists them" in error_of(http.get(path), 404)
    assert "GET /v1/people lists them" in error_of(http.delete("/v1/people/p-000000000000"), 404)
    assert "GET /v1/people lists them" in error_of(
        http.post("/v1/people/p-000000000000/merge", json={"other": "p-111111111111"}), 404
    )
    assert "not only spaces" in error_of(
        http.post("/v1/people", params={"name": "  "}, content=GROUP, headers=JPEG), 400
    )
    assert "not only spaces" in error_of(http.patch("/v1/people/p-000000000000", json={"name": " "}), 400)
    for method, path, allow in (
        ("PUT", "/v1/people", "GET, POST"),
        ("OPTIONS", "/v1/people/p-000000000000", "GET, PATCH, DELETE"),
        ("PUT", "/v1/people/p-000000000000/faces", "GET"),
    ):
        refused = http.request(method, path)
        assert "no such endpoint" in error_of(refused, 405) and refused.headers["allow"] == allow
