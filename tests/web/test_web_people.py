"""The web page's People view (issue 24 item 6) in a real headless Chromium (`make e2e`, not in
`make test`).

One real stack with recognition on and an API token (`faces up --serve`: embedded Redis, a worker
process per stage, the HTTP API). Five one-face photos are analysed: the astronaut, and four faces
cut from bald_guys.jpg (bench/identities.json): two of Vin Diesel, near enough to form one cluster
(0.35 apart, under the cluster threshold of 0.45), and two of Dwayne Johnson, too far apart for
one (0.58). The browser, given the token, then does what a user does in the People view, and after
each step the test checks the page and the API (counting exactly): the clusters with their face
thumbnails (cropped in the page from each photo) and counts, a placeholder for a photo whose bytes
are gone; name a cluster, rename the person, mark a face "not this person", merge two clusters,
and search by dropping a photo. At 390 px and 1280 px nothing overflows. The only console errors
are the 404s of the photo that is gone. Screenshots: bench-results/web-page-people-390.png and
-1280.png (the list), web-page-person.png (a named person), web-page-search.png (a search).

Skips, saying why, when Chromium, chromedriver or selenium are missing: `make e2e` installs them.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.browser import (  # noqa: E402, F401 (browser_fixture: the `browser` fixture)
    RESULT_S,
    TOKEN,
    Stack,
    browser_fixture,
    console_errors,
    fits_at_each_width,
    full_page_screenshot,
    start_stack,
    wait_for,
)
from tests.images import DATA
from tests.pipeline import REPO
from tests.recognition_faces import IDENTITIES
from tests.web_browse import drop_file

pytestmark = pytest.mark.slow

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: `pip install -e '.[dev]'`")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

# Faces of bald_guys.jpg (their index in bench/identities.json): the photos cut from it.
CUTS = {"vin-a": 5, "vin-b": 7, "dwayne-a": 1, "dwayne-b": 20, "vin-c": 21}
STORED = ("vin-a", "vin-b", "dwayne-a", "dwayne-b")  # vin-c is only searched for


def cut_faces(bald_guys: Path, folder: Path) -> dict[str, Path]:
    """Each face of CUTS as a photo of its own: its box and a box's width around it."""
    boxes = json.loads(IDENTITIES.read_text())["photos"]["bald_guys.jpg"]
    folder.mkdir()
    photos = {}
    with Image.open(bald_guys) as whole:
        for name, index in CUTS.items():
            b = boxes[index]["box"]
            m = b["w"]
            area = (max(0, b["x"] - m), max(0, b["y"] - m), b["x"] + b["w"] + m, b["y"] + b["h"] + m)
            photos[name] = folder / f"{name}.jpg"
            whole.convert("RGB").crop(area).save(photos[name], "JPEG", quality=90)
    return photos


def analyse(stack: Stack, photo: Path) -> dict:
    """POST /v1/images?wait: the photo's result, with its one face."""
    with open(photo, "rb") as f:
        response = httpx.post(
            stack.base + "/v1/images?wait=60",
            files={"file": (photo.name, f, "image/jpeg")},
            headers=stack.headers(),
            timeout=90,
        )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "ok" and len(result["faces"]) == 1, result
    return result


def stored_face(stack: Stack, image_id: str) -> dict:
    """The one face of `image_id`'s stored result, as the API has it now."""
    response = stack.get(f"/v1/results/{image_id}")
    assert response.status_code == 200, response.text
    [face] = response.json()["faces"]
    return face


def people(stack: Stack) -> list[dict]:
    response = stack.get("/v1/people")
    assert response.status_code == 200, response.text
    return response.json()["people"]


def cards(driver) -> list[tuple[str, str, str]]:
    """Each card of the people list: (person id, name shown, face count shown)."""
    return [
        (
            c.get_attribute("data-person-id"),
            c.find_element(By.CSS_SELECTOR, ".person-name").text,
            c.find_element(By.CSS_SELECTOR, ".face-count").text,
        )
        for c in driver.find_elements(By.CSS_SELECTOR, "#people .person-card")
    ]


def thumbnail_states(driver, scope: str) -> list[str]:
    """The state of each face thumbnail under `scope`: drawn, gone, waiting or loading."""
    return [t.get_attribute("data-state") for t in driver.find_elements(By.CSS_SELECTOR, f"{scope} .face-thumb")]


def drawn_a_picture(driver, scope: str) -> bool:
    """Every drawn thumbnail under `scope` holds a picture: its pixels vary (not one flat colour)."""
    return driver.execute_script(
        """
        return [...document.querySelectorAll(arguments[0] + ' .face-thumb[data-state="drawn"] canvas')].every((c) => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let low = 255, high = 0;
            for (let i = 0; i < d.length; i += 4) { low = Math.min(low, d[i]); high = Math.max(high, d[i]); }
            return high - low > 40;
        });""",
        scope,
    )


def person_faces(driver) -> list[tuple[str, int]]:
    """(image id, face) of each face on the person page."""
    return [
        (f.get_attribute("data-image-id"), int(f.get_attribute("data-face-index")))
        for f in driver.find_elements(By.CSS_SELECTOR, "#person-faces .person-face")
    ]


def open_card(driver, person_id: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#people .person-card[data-person-id="{person_id}"] a').click()
    wait_for(
        driver,
        lambda d: d.find_element(By.ID, "person-counts").text.endswith(f"id {person_id}"),
        f"the page of {person_id}",
        timeout_s=30,
    )


def submit_name(driver, name: str) -> None:
    field = driver.find_element(By.ID, "name-input")
    field.clear()
    field.send_keys(name)
    driver.find_element(By.ID, "name-submit").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "person-title").text == name, f"the title {name!r}", 30)


def back_to_people(driver) -> None:
    driver.find_element(By.CSS_SELECTOR, '#person-view a[href="#/people"]').click()
    wait_for(driver, lambda d: d.find_element(By.ID, "people-view").is_displayed(), "the people list", 30)


def test_people_view_names_renames_corrects_merges_and_searches(tmp_path, browser, dlib_faces_dir, monkeypatch):  # noqa: F811 (the fixture)
    """With a token and recognition on: the People view lists the four clusters of five one-face
    photos (2, 1, 1, 1 faces), each face as a thumbnail cropped from its photo, and a "photo gone"
    placeholder for the photo whose upload was deleted; naming the two-face cluster shows it named
    and names both stored results (API); renaming renames them; "not this person" takes a face out
    (its result: no person, a cluster of its own); merging the two Dwayne clusters gives one
    cluster of 2 faces, both results carrying it; a photo dropped on the search box lists its one
    face, matched to the renamed person, with the nearest stored faces the API gives, in its
    order; nothing overflows at 390 px or 1280 px; the console's only errors are the gone photo's
    404s."""
    photos = cut_faces(dlib_faces_dir / "bald_guys.jpg", tmp_path / "cuts")
    monkeypatch.setenv("FACES_RECOGNITION", "on")  # the stack's processes inherit it
    stack = start_stack(tmp_path, token=TOKEN)
    try:
        ids = {name: analyse(stack, photos[name])["image_id"] for name in STORED}
        astronaut = analyse(stack, DATA / "astronaut.jpg")
        ids["astronaut"] = astronaut["image_id"]
        clusters = {name: stored_face(stack, image_id)["cluster"] for name, image_id in ids.items()}
        # The premise: the Vin faces form one cluster, every other face one of its own; no names.
        assert clusters["vin-a"] == clusters["vin-b"] and len(set(clusters.values())) == 4, clusters
        listed = people(stack)
        assert [(p["name"], p["faces"]) for p in listed] == [(None, 2), (None, 1), (None, 1), (None, 1)]
        vin, dwayne_a, dwayne_b, lone = (
            clusters["vin-a"],
            clusters["dwayne-a"],
            clusters["dwayne-b"],
            clusters["astronaut"],
        )
        # The astronaut's uploaded bytes are gone (as uploads expire): its photo answers 404.
        Path(astronaut["image"]["path"]).unlink()
        assert stack.get(f"/v1/results/{ids['astronaut']}/photo").status_code == 404

        # The token, given before the page's first request (a page of the same origin).
        browser.get(stack.base + "/static/style.css")
        browser.execute_script("localStorage.setItem('faces.apiToken', arguments[0])", TOKEN)
        browser.get_log("browser")  # drained: a stylesheet opened as a page asks for /favicon.ico (404)
        browser.get(stack.base + "/#/people")
        wait_for(
            browser,
            lambda d: len(cards(d)) == 4 and sorted(thumbnail_states(d, "#people")) == ["drawn"] * 4 + ["gone"],
            "the four clusters and their five thumbnails",
            timeout_s=RESULT_S,
        )
        assert browser.find_element(By.ID, "nav-people").get_attribute("aria-current") == "page"
        assert cards(browser)[0] == (vin, "Unnamed cluster", "2 faces")
        assert sorted(cards(browser)[1:]) == sorted(
            (c, "Unnamed cluster", "1 face") for c in (dwayne_a, dwayne_b, lone)
        )
        assert browser.find_element(By.ID, "people-message").text == "0 named, 4 unnamed clusters."
        gone = f'#people .person-card[data-person-id="{lone}"] .face-thumb'
        assert browser.find_element(By.CSS_SELECTOR, gone).get_attribute("data-state") == "gone"
        assert browser.find_element(By.CSS_SELECTOR, gone).text == "photo gone"
        assert drawn_a_picture(browser, "#people")
        fits_at_each_width(browser, "people", lambda d: thumbnail_states(d, "#people").count("drawn") == 4)

        # Open the Vin cluster: its two faces, each a thumbnail linking to its photo's result.
        open_card(browser, vin)
        assert sorted(person_faces(browser)) == sorted([(ids["vin-a"], 0), (ids["vin-b"], 0)])
        wait_for(browser, lambda d: thumbnail_states(d, "#person-faces") == ["drawn"] * 2, "the faces' thumbnails", 30)
        links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#person-faces a.face-photo")]
        assert sorted(link.split("#")[1] for link in links) == sorted(f"/results/{ids[n]}" for n in ("vin-a", "vin-b"))
        assert browser.find_element(By.ID, "person-title").text == "Unnamed cluster"
        assert browser.find_element(By.ID, "name-label").text == "Name this cluster"

        # Name it: the page shows the person; both stored results carry the name.
        submit_name(browser, "Vin Diesel")
        assert browser.find_element(By.ID, "person-message").text.startswith("Named Vin Diesel")
        assert (
            browser.find_element(By.ID, "person-counts").text == f"2 faces, enrolled from 2 reference faces · id {vin}"
        )
        for name in ("vin-a", "vin-b"):
            face = stored_face(stack, ids[name])
            assert (face["person"]["id"], face["person"]["name"], face["cluster"]) == (vin, "Vin Diesel", None)

        # Rename: the results follow.
        submit_name(browser, "Mark Sinclair")
        assert browser.find_element(By.ID, "person-message").text == "Renamed Vin Diesel to Mark Sinclair."
        full_page_screenshot(browser, [REPO / "bench-results" / "web-page-person.png"])
        assert [stored_face(stack, ids[n])["person"]["name"] for n in ("vin-a", "vin-b")] == ["Mark Sinclair"] * 2

        # Not this person: vin-b's face leaves; its result names no one and has a cluster of its own.
        browser.find_element(
            By.CSS_SELECTOR, f'#person-faces .person-face[data-image-id="{ids["vin-b"]}"] button.not-this'
        ).click()
        wait_for(browser, lambda d: person_faces(d) == [(ids["vin-a"], 0)], "the face to leave", 30)
        message = browser.find_element(By.ID, "person-message").text
        assert message == f"Face 1 of {ids['vin-b']} is not Mark Sinclair: it is in a cluster of its own now."
        assert browser.find_element(By.ID, "person-counts").text.startswith("1 face,")
        left = stored_face(stack, ids["vin-b"])
        assert left["person"] is None and left["cluster"] not in (None, *clusters.values()), left

        # Merge the two Dwayne clusters from the first one's page.
        back_to_people(browser)
        wait_for(browser, lambda d: len(cards(d)) == 5, "five entries: the face taken out is a cluster", 30)
        open_card(browser, dwayne_a)
        wait_for(
            browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#merge-select option")) == 5, "merge choices", 30
        )
        Select(browser.find_element(By.ID, "merge-select")).select_by_value(dwayne_b)
        browser.find_element(By.ID, "merge-submit").click()
        wait_for(browser, lambda d: len(person_faces(d)) == 2, "the merged cluster's two faces", 30)
        assert sorted(person_faces(browser)) == sorted([(ids["dwayne-a"], 0), (ids["dwayne-b"], 0)])
        assert browser.find_element(By.ID, "person-message").text == "Merged: this cluster has 2 faces now."
        assert {stored_face(stack, ids[n])["cluster"] for n in ("dwayne-a", "dwayne-b")} == {dwayne_a}
        assert [(p["name"], p["faces"]) for p in people(stack)] == [
            ("Mark Sinclair", 1),
            (None, 2),
            (None, 1),
            (None, 1),
        ]
        back_to_people(browser)
        wait_for(browser, lambda d: len(cards(d)) == 4, "the list after the merge", 30)
        assert [(c[1], c[2]) for c in cards(browser)] == [
            ("Mark Sinclair", "1 face"),
            ("Unnamed cluster", "2 faces"),
            ("Unnamed cluster", "1 face"),
            ("Unnamed cluster", "1 face"),
        ]

        # Search: a third photo of Vin Diesel dropped on the search box (a synthetic drop event:
        # WebDriver cannot drag files) finds his face, matched to the person, as the API does.
        searched = photos["vin-c"].read_bytes()
        answer = httpx.post(
            stack.base + "/v1/search",
            content=searched,
            headers={**stack.headers(), "Content-Type": "image/jpeg"},
            timeout=60,
        ).json()
        [expected] = answer["faces"]
        assert [p["name"] for p in expected["people"]] == ["Mark Sinclair"]
        drop_file(browser, "search-zone", "vin-c.jpg", searched)
        wait_for(
            browser,
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, "#search-results .search-face")) == 1
                and thumbnail_states(d, "#search-results").count("loading") == 0
            ),
            "the search's face and thumbnails",
            timeout_s=RESULT_S,
        )
        assert browser.find_element(By.ID, "search-message").text == "vin-c.jpg: 1 face."
        matched = browser.find_elements(By.CSS_SELECTOR, "#search-results .search-person")
        assert [(m.get_attribute("data-person-id"), m.find_element(By.TAG_NAME, "a").text) for m in matched] == [
            (vin, "Mark Sinclair")
        ]
        near = browser.find_elements(By.CSS_SELECTOR, "#search-results .near-face")
        assert [(n.get_attribute("data-image-id"), int(n.get_attribute("data-face-index"))) for n in near] == [
            (n["image_id"], n["face"]) for n in expected["nearest"]
        ]
        assert len(near) == 5  # every stored face: five, under the five nearest asked for
        # The searched face drawn from the dropped file; the stored ones from their photos, but
        # the astronaut's, whose photo is gone.
        assert sorted(thumbnail_states(browser, "#search-results")) == ["drawn"] * 5 + ["gone"]
        assert drawn_a_picture(browser, "#search-results")
        full_page_screenshot(browser, [REPO / "bench-results" / "web-page-search.png"])

        gone_photo = f"/v1/results/{ids['astronaut']}/photo"
        errors = console_errors(browser)
        assert [e for e in errors if gone_photo not in e["message"] or "404" not in e["message"]] == [], errors
    finally:
        stack.stop()
