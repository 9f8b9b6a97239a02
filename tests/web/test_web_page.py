"""The web page at `/` (issue 13) in a real headless Chromium (`make e2e`, not in `make test`).

A real stack runs: `faces up --serve` (an embedded redis-server, one worker process per stage,
the HTTP API). The browser opens the page, uploads a photo through the page's own file input,
and the test waits (polling, never sleeping) until the photo's faces and ages are on the page.
Then the result's page: one box drawn per face, at the result's coordinates over the photo,
and the ages, genders and confidences shown are the API's result JSON; the stage panel shows
live numbers; the gallery shows the annotated thumbnail; the browser console stays clean. A
second run with FACES_API_TOKEN set proves the page asks for the token and then works with it.
Screenshot: bench-results/web-page.png (copy it to docs/web-page.png to update the README's).

Skips, saying why, when Chromium, chromedriver or selenium are missing: `make e2e` installs them.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import httpx
import pytest

from tests.images import DATA
from tests.pipeline import REPO
from tests.ports import free_port
from tests.waiting import wait_until
from tests.web_browse import browsing

pytestmark = pytest.mark.slow

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: `pip install -e '.[dev]'`")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

from tests.browser import (  # noqa: E402, F401 (browser_fixture: the `browser` fixture)
    PHOTO,
    SCREENSHOTS,
    TOKEN,
    badges,
    browser_fixture,
    console_errors,
    drawn_boxes,
    fits_at_each_width,
    full_page_screenshot,
    js_percent,
    listed_ages,
    overflows,
    picture_loaded,
    stage_numbers,
    start_stack,
    upload_through_the_page,
    wait_for,
)


def test_page_uploads_a_photo_and_shows_its_faces_boxes_ages_and_the_stages(tmp_path, browser):
    """Upload through the page's file input; the page lists the photo's faces with the API's
    ages; its result page draws one box per face at the result's coordinates over the photo and
    shows every face's age, gender with confidence, pose and quality; the photo under the boxes
    is the plain one (one annotation: the page's), every badge inside it, a legend says what they
    are; the stage panel shows live numbers (the photo went through every stage within the last
    minute), workers by heartbeat, results per minute, a tooltip for every number and a legend;
    the gallery shows its annotated thumbnail and face count, and its filters by file name and
    status; at 390 px and 1280 px nothing overflows (no horizontal scroll, no clipped column);
    the console holds no error. Then, the stack stopped, `faces browse` shows the same result
    from its files, read-only (no upload box)."""
    stack = start_stack(tmp_path)
    try:
        browser.get(stack.base + "/")
        assert browser.title.startswith("faces")
        wait_for(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, '#stages [data-stage="sink"]'),
            "the stage panel's first status",
            timeout_s=20,
        )

        [image_id] = upload_through_the_page(browser, PHOTO)
        response = stack.get(f"/v1/results/{image_id}")
        assert response.status_code == 200, response.text
        result = response.json()
        faces = result["faces"]
        assert result["status"] == "ok" and len(faces) == 4
        assert all(isinstance(f["age"], float) for f in faces)

        # The upload's entry lists every face with its age, as the API has it.
        assert listed_ages(browser, image_id) == [(f["age"], f"{f['age']:.1f} y") for f in faces]

        # Its result page: the photo, one box per face, at the result's pixel coordinates.
        browser.find_element(By.CSS_SELECTOR, f'#uploads [data-image-id="{image_id}"] .upload-name a').click()
        wait_for(
            browser,
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, "#result-boxes rect.face-box")) == len(faces)
                and picture_loaded(d, "#result-image")
            ),
            "the result page's photo and boxes",
            timeout_s=30,
        )
        assert browser.current_url.endswith(f"#/results/{image_id}")
        image = result["image"]
        view_box = browser.find_element(By.ID, "result-boxes").get_dom_attribute("viewBox")
        assert view_box == f"0 0 {image['width']} {image['height']}"
        assert "4 faces" in browser.find_element(By.ID, "result-image").get_attribute("alt")
        photo, boxes = drawn_boxes(browser)
        scale_x, scale_y = photo["width"] / image["width"], photo["height"] / image["height"]
        for drawn, face in zip(boxes, faces, strict=True):
            box, screen = face["box"], drawn["screen"]
            assert (drawn["x"], drawn["y"], drawn["w"], drawn["h"]) == (box["x"], box["y"], box["w"], box["h"])
            # On screen, the box sits over the same pixels of the displayed photo (within 2 px).
            assert screen["left"] == pytest.approx(photo["left"] + box["x"] * scale_x, abs=2)
            assert screen["top"] == pytest.approx(photo["top"] + box["y"] * scale_y, abs=2)
            assert screen["width"] == pytest.approx(box["w"] * scale_x, abs=2)
            assert screen["height"] == pytest.approx(box["h"] * scale_y, abs=2)

        # The table: one row per face with the API's age, gender and confidence, pose, quality.
        rows = browser.find_elements(By.CSS_SELECTOR, "#faces-body tr.face-row")
        assert len(rows) == len(faces)
        for row, face in zip(rows, faces):
            cell = {c.get_attribute("class"): c for c in row.find_elements(By.TAG_NAME, "td")}
            assert float(cell["age"].get_attribute("data-age")) == face["age"]
            assert cell["age"].text.startswith(f"{face['age']:.1f} y")
            gender, pose, quality = face["gender"], face["pose"], face["quality"]
            assert cell["gender"].text == f"{gender['label']}, {js_percent(gender['confidence'])}"
            assert float(cell["gender"].get_attribute("data-confidence")) == gender["confidence"]
            assert cell["pose"].text == f"{pose['yaw']:.1f} / {pose['pitch']:.1f} / {pose['roll']:.1f}"
            assert cell["quality"].text == f"{quality['sharpness']:.1f} / {quality['brightness']:.1f}"

        # A phone and a laptop: nothing overflows (issue 26 item 5).
        fits_at_each_width(browser, "result", lambda d: picture_loaded(d, "#result-image"))

        # One annotation: the page's boxes and badges over the plain photo (not the server's
        # labelled picture), every badge inside the photo, and a legend saying what they are.
        assert browser.find_element(By.ID, "result-image").get_attribute("data-src").endswith(f"/{image_id}/photo")
        assert browser.execute_script(
            "const i = document.getElementById('result-image');return [i.naturalWidth, i.naturalHeight]"
        ) == [image["width"], image["height"]]
        for badge in badges(browser):
            assert 0 <= badge["x"] and badge["x"] + badge["w"] <= image["width"] + 0.01, badge
            assert 0 <= badge["y"] and badge["y"] + badge["h"] <= image["height"] + 0.01, badge
        legend = browser.find_element(By.ID, "result-legend")
        assert legend.is_displayed() and "its age in years" in legend.text

        # The stage panel: numbers for every stage; the photo counted in each stage's last minute;
        # workers by heartbeat; results per minute; every number explained.
        numbers = wait_for(browser, stage_numbers, "the stage panel to count the photo in every stage", timeout_s=30)
        assert browser.find_element(By.CSS_SELECTOR, '#totals dd[data-metric="dead_letters"]').text == "0"
        assert int(browser.find_element(By.CSS_SELECTOR, '#totals dd[data-metric="results_rate"]').text) >= 1
        assert not browser.find_elements(By.CSS_SELECTOR, '#stages dd[data-metric="consumers"]')
        for term in browser.find_elements(By.CSS_SELECTOR, "#stages dt, #totals dt"):
            assert term.get_attribute("title"), term.text
        browser.find_element(By.CSS_SELECTOR, "#stages-legend summary").click()
        legend_terms = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#stages-legend dt")]
        assert {"per min", "lag", "pending", "workers", "results"} <= set(legend_terms)
        print("stage panel:", numbers)
        full_page_screenshot(browser, SCREENSHOTS)

        # The gallery: the annotated thumbnail (loaded), its face count and status.
        browser.find_element(By.CSS_SELECTOR, '#result-view a[href="#/"]').click()
        card = f'#gallery .gallery-item[data-image-id="{image_id}"]'
        wait_for(browser, lambda d: picture_loaded(d, f"{card} img"), "the gallery's thumbnail", timeout_s=30)
        assert browser.find_element(By.CSS_SELECTOR, f"{card} .face-count").text == "4 faces"
        assert browser.find_element(By.CSS_SELECTOR, f"{card} .badge").text == "ok"
        assert "4 faces" in browser.find_element(By.CSS_SELECTOR, f"{card} img").get_attribute("alt")
        home_shot = REPO / "bench-results" / "web-page-home.png"
        assert browser.save_screenshot(str(home_shot))
        fits_at_each_width(browser, "home", lambda d: picture_loaded(d, f"{card} img"))

        # The gallery's filters: by file name, then by status.
        search = browser.find_element(By.ID, "gallery-search")
        search.send_keys("no-such-photo")
        wait_for(
            browser,
            lambda d: d.find_element(By.ID, "gallery-message").text == "No results match.",
            "the search to find nothing",
            timeout_s=20,
        )
        search.clear()
        search.send_keys("GROUP.jpg")
        wait_for(
            browser,
            lambda d: (
                [c.get_attribute("data-image-id") for c in d.find_elements(By.CSS_SELECTOR, "#gallery .gallery-item")]
                == [image_id]
            ),
            "the search to find the photo",
            timeout_s=20,
        )
        Select(browser.find_element(By.ID, "gallery-status")).select_by_value("error")
        wait_for(
            browser,
            lambda d: not d.find_elements(By.CSS_SELECTOR, "#gallery .gallery-item"),
            "no error result to show",
            timeout_s=20,
        )
        assert browser.find_element(By.ID, "gallery-more").get_attribute("hidden") is not None

        assert console_errors(browser) == []
    finally:
        stack.stop()

    # Item 11: the finished run's results, browsed without the pipeline.
    browser.get("about:blank")
    browser.get_log("browser")  # drained: the stopped stack's page logged its refused requests
    with browsing(tmp_path / "storage", tmp_path / "output", tmp_path / "browse.log") as base:
        browser.get(base + "/")
        card = f'#gallery .gallery-item[data-image-id="{image_id}"]'
        wait_for(browser, lambda d: picture_loaded(d, f"{card} img"), "the browsed gallery's thumbnail", timeout_s=30)
        assert not browser.find_element(By.ID, "upload-card").is_displayed()
        assert "faces browse" in browser.find_element(By.ID, "stages-updated").text
        browser.find_element(By.CSS_SELECTOR, f"{card} a").click()
        wait_for(
            browser,
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, "#result-boxes rect.face-box")) == len(faces)
                and picture_loaded(d, "#result-image")
            ),
            "the browsed result's photo and boxes",
            timeout_s=30,
        )
        full_page_screenshot(browser, [REPO / "bench-results" / "web-page-browse.png"])
        assert console_errors(browser) == []


def test_docs_renders_every_operation_from_the_servers_own_files(tmp_path, browser):
    """/docs (Swagger UI) shows the API's operations with nothing fetched from the internet: every
    resource the page loaded came from the server itself (this machine has no internet: a CDN
    left it blank), and the console is clean."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "FACES_API_TOKEN"}
    # No Redis needed for the reference: the API starts without one (503 until it is there).
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faces",
            "serve",
            "--redis-url",
            "redis://127.0.0.1:1/0",
            "--port",
            str(port),
            "--uploads",
            str(tmp_path / "uploads"),
        ],
        cwd=REPO,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is None and _answers(base), timeout_s=60, what="faces serve to answer")
        browser.get(base + "/docs")
        operations = wait_for(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"),
            "Swagger UI's operations",
            timeout_s=30,
        )
        paths = {o.get_attribute("data-path") or o.text for o in operations}
        assert {"/v1/images", "/v1/results", "/v1/results/{image_id}/photo"} <= paths, paths
        loaded = browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
        assert loaded and all(url.startswith(base + "/") for url in loaded), loaded
        assert console_errors(browser) == []
    finally:
        process.terminate()
        process.wait(timeout=15)


def _answers(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_page_with_an_api_token_asks_for_it_and_then_works(tmp_path, browser):
    """With FACES_API_TOKEN set, the page opens its token field (the API answered 401); once the
    token is entered it is kept in localStorage and sent as Bearer: the stage panel fills in, and
    two photos picked at once come back with their faces (four, and none) and thumbnails, and a
    photo dropped on the drop zone too. The only console errors are the 401s from before the
    token was entered."""
    stack = start_stack(tmp_path, token=TOKEN)
    try:
        assert httpx.get(stack.base + "/v1/status", timeout=10).status_code == 401
        browser.get(stack.base + "/")
        wait_for(
            browser,
            lambda d: (
                d.find_element(By.ID, "token-box").get_attribute("open") is not None
                and "token" in d.find_element(By.ID, "token-message").text
            ),
            "the page to ask for a token",
            timeout_s=20,
        )
        token_input = browser.find_element(By.ID, "token-input")
        label = browser.find_element(By.CSS_SELECTOR, 'label[for="token-input"]')
        assert label.text
        token_input.send_keys(TOKEN)
        saved_at = browser.execute_script("return Date.now()")
        browser.find_element(By.CSS_SELECTOR, '#token-form button[type="submit"]').click()
        assert browser.execute_script("return localStorage.getItem('faces.apiToken')") == TOKEN

        wait_for(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, '#stages dd[data-metric="workers"]'),
            "the stage panel, with the token",
            timeout_s=20,
        )
        # Two photos picked at once: each its own upload; the one without faces says so.
        ids = upload_through_the_page(browser, PHOTO, DATA / "no_face.jpg")
        [image_id] = [i for i in ids if i.startswith("group-")]
        [empty_id] = [i for i in ids if i.startswith("no_face-")]
        empty_status = browser.find_element(By.CSS_SELECTOR, f'#uploads [data-image-id="{empty_id}"] .upload-status')
        assert empty_status.text == "0 faces"
        assert stack.get(f"/v1/results/{empty_id}").json()["faces"] == []
        result = stack.get(f"/v1/results/{image_id}").json()
        assert [age for age, _ in listed_ages(browser, image_id)] == [f["age"] for f in result["faces"]]
        # The thumbnail needs the token too: fetched with it, shown from a blob.
        card = f'#gallery .gallery-item[data-image-id="{image_id}"] img'
        wait_for(
            browser,
            lambda d: picture_loaded(d, card, blob=True),
            "the gallery's thumbnail, fetched with the token",
            timeout_s=30,
        )
        # A photo dropped on the drop zone (a synthetic drop event: WebDriver cannot drag files).
        browser.execute_script(
            """
            const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
            const dropped = new DataTransfer();
            dropped.items.add(new File([bytes], "astronaut.jpg", {type: "image/jpeg"}));
            document.getElementById("drop-zone").dispatchEvent(
                new DragEvent("drop", {dataTransfer: dropped, bubbles: true, cancelable: true}));""",
            base64.b64encode((DATA / "astronaut.jpg").read_bytes()).decode(),
        )
        dropped = wait_for(
            browser,
            lambda d: next(
                iter(
                    d.find_elements(By.CSS_SELECTOR, '#uploads .upload[data-image-id^="astronaut-"][data-state="done"]')
                ),
                None,
            ),
            "the dropped photo's result",
        )
        assert dropped.find_element(By.CSS_SELECTOR, ".upload-status").text == "1 face"
        errors = console_errors(browser)
        before = [e for e in errors if e["timestamp"] < saved_at]
        assert before and all("401" in e["message"] for e in before), before
        assert [e for e in errors if e["timestamp"] >= saved_at] == []
    finally:
        stack.stop()
