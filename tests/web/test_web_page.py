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
import math
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.images import DATA
from tests.pipeline import REPO, faces_cli
from tests.ports import free_port
from tests.waiting import wait_until
from tests.web_browse import browsing

pytestmark = pytest.mark.slow

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: `pip install -e '.[dev]'`")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

STAGES = ("detect", "landmarks", "agegender", "embed", "sink")
PHOTO = DATA / "group.jpg"  # four faces (tests/system/test_pipeline.py)
SCREENSHOTS = [REPO / "bench-results" / "web-page.png"]
STACK_READY_S = 180  # four workers loading their models on a busy 2-core machine
RESULT_S = 120
TOKEN = "e2e-token-7f3a0c9d51b2e846"  # the API wants 16 characters or more


def browser_binaries() -> tuple[str, str]:
    """Chromium and its driver from PATH (Debian: `apt-get install chromium chromium-driver`)."""
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "no headless browser: `make e2e` installs chromium and chromium-driver with apt-get "
            f"(found chromium: {browser}, chromedriver: {driver})"
        )
    return browser, driver


class Stack:
    """`faces up --serve` as a subprocess: embedded Redis, the five stages and the HTTP API."""

    def __init__(self, tmp_path: Path, token: str | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.log = tmp_path / "faces-up.log"
        self.state = tmp_path / "state"
        env = {
            **os.environ,
            "FACES_HTTP_PORT": str(self.port),
            "FACES_HTTP_HOST": "127.0.0.1",
            "FACES_AGEGENDER": "dlib",  # the bundled networks: real ages, offline
            "DEEPFACE_HOME": str(tmp_path / "deepface-empty"),
            "FACES_UPLOADS": str(tmp_path / "uploads"),
        }
        env.pop("FACES_REDIS_URL", None)
        env.pop("REDIS_URL", None)
        if token:
            env["FACES_API_TOKEN"] = token
        else:
            env.pop("FACES_API_TOKEN", None)
        args = [
            sys.executable,
            "-m",
            "faces",
            "up",
            "--serve",
            "--state-dir",
            str(self.state),
            "--storage",
            str(tmp_path / "storage"),
            "--output",
            str(tmp_path / "output"),
            "--batch",
            "4",
        ]
        with open(self.log, "wb") as log:
            # Its own session: the stop below reaches the workers even if `faces up` hangs.
            self.process = subprocess.Popen(
                args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, headers=self.headers(), timeout=10)

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                serve_log = self.state / "logs" / "serve.log"
                raise AssertionError(
                    f"`faces up --serve` exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}"
                    + (serve_log.read_text()[-2000:] if serve_log.exists() else "")
                )
            try:
                return httpx.get(self.base + "/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout_s=STACK_READY_S, interval_s=0.5, what="faces up --serve to be ready (/readyz 200)")

    def stop(self) -> None:
        """Ctrl-C, as a user stops `faces up`; SIGKILL of its session after 60 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_stack(tmp_path: Path, token: str | None = None) -> Stack:
    help_text = faces_cli("up", "--help", env={"COLUMNS": "200"}).stdout
    if "--serve" not in help_text:
        pytest.skip("`faces up` has no --serve option yet: the HTTP API (ops/web/app.py) is not installed")
    stack = Stack(tmp_path, token)
    try:
        stack.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return stack


@pytest.fixture
def browser(tmp_path) -> Iterator[webdriver.Chrome]:
    binary, driver_path = browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    # No connection out of the machine of its own (this one has no internet; the page needs none).
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, condition, what: str, timeout_s: float = RESULT_S):
    """WebDriverWait polling (elements re-rendered mid-check count as "not yet")."""

    def check(d):
        try:
            return condition(d)
        except StaleElementReferenceException:
            return False

    return WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(check, message=f"waiting for {what}")


def picture_loaded(driver, selector: str, blob: bool = False) -> bool:
    """The <img> at `selector` exists and shows a decoded picture (from a blob: URL if `blob`)."""
    return driver.execute_script(
        "const i = document.querySelector(arguments[0]);"
        "return !!i && i.complete && i.naturalWidth > 0 && (!arguments[1] || i.src.startsWith('blob:'))",
        selector,
        blob,
    )


def console_errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def upload_through_the_page(driver, *photos: Path) -> list[str]:
    """Picks `photos` at once in the page's file input (as a user picks several); returns their
    image ids, in the page's order (newest first), once every upload has finished."""
    driver.find_element(By.ID, "file-input").send_keys("\n".join(str(p) for p in photos))

    def finished(d):
        items = d.find_elements(By.CSS_SELECTOR, "#uploads .upload")
        states = [i.get_attribute("data-state") for i in items]
        return items if len(items) == len(photos) and all(s in ("done", "error", "failed") for s in states) else None

    items = wait_for(driver, finished, f"the uploads of {', '.join(p.name for p in photos)} to finish")
    assert [i.get_attribute("data-state") for i in items] == ["done"] * len(photos), [i.text for i in items]
    return [i.get_attribute("data-image-id") for i in items]


def full_page_screenshot(driver, paths: list[Path], width: int = 1400) -> None:
    """The whole page in one picture: the viewport made as tall as the page for the shot (a
    headless window cannot be taller than its screen)."""
    try:
        # The photo may be as tall as 60 % of the viewport: the page grows with it, up to its width.
        height = 0
        for _ in range(5):
            page = min(int(driver.execute_script("return document.documentElement.scrollHeight")), 4000)
            if page == height:
                break
            height = page
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            assert driver.save_screenshot(str(path)), f"no screenshot at {path}"
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def listed_ages(driver, image_id: str) -> list:
    """The ages the upload's entry shows for `image_id`: (the value in data-age, the text)."""
    cells = driver.find_elements(By.CSS_SELECTOR, f'#uploads [data-image-id="{image_id}"] .face-item .age')
    return [(float(c.get_attribute("data-age")), c.text) for c in cells]


def drawn_boxes(driver) -> tuple[dict, list[dict]]:
    """The displayed photo's rectangle on screen, and each drawn box: its SVG attributes (in image
    pixels) and its rectangle on screen."""
    return tuple(
        driver.execute_script("""
        const rect = (node) => { const b = node.getBoundingClientRect();
                                 return {left: b.left, top: b.top, width: b.width, height: b.height}; };
        const boxes = [...document.querySelectorAll('#result-boxes rect.face-box')].map((r) => ({
            x: +r.getAttribute('x'), y: +r.getAttribute('y'), w: +r.getAttribute('width'),
            h: +r.getAttribute('height'), screen: rect(r)}));
        return [rect(document.getElementById('result-image')), boxes];""")
    )


def js_percent(confidence: float) -> str:
    return f"{math.floor(confidence * 100 + 0.5)} %"  # JavaScript's Math.round: halves up


def stage_numbers(driver) -> dict | None:
    """Each stage's numbers in the panel, once every stage shows digits and has counted at least
    one entry in the last minute; else None."""
    numbers = {}
    for stage in STAGES:
        cells = driver.find_elements(By.CSS_SELECTOR, f'#stages [data-stage="{stage}"] dd[data-metric]')
        numbers[stage] = {c.get_attribute("data-metric"): c.text for c in cells}
    shown = all(
        all(v.get(k, "").isdigit() for k in ("throughput", "lag", "pending", "workers"))
        and int(v["throughput"]) >= 1
        and int(v["workers"]) >= 1
        for v in numbers.values()
    )
    return numbers if shown else None


WIDTHS = (390, 1280)  # a phone (issue 26 item 5) and a laptop


def set_width(driver, width: int) -> None:
    """The viewport `width` px wide (a phone's: mobile), 900 px tall."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def overflows(driver) -> list[str]:
    """What sticks out: the page wider than the viewport (a horizontal scroll), any shown element
    past its right edge, or any scrolling box whose content is wider than the box (a clipped
    table column); empty when everything fits."""
    return driver.execute_script("""
        const width = document.documentElement.clientWidth, out = [];
        const name = (e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${typeof e.className === 'string' && e.className ? '.' + e.className.split(' ')[0] : ''}`;
        if (document.documentElement.scrollWidth > width) out.push(`page ${document.documentElement.scrollWidth} > ${width}`);
        for (const e of document.querySelectorAll('body *')) {
            if (!e.getClientRects().length || e.closest('[hidden], .visually-hidden, details:not([open]) > :not(summary)')) continue;
            const r = e.getBoundingClientRect();
            if (r.width > 1 && r.right > width + 1) out.push(`${name(e)} right ${Math.round(r.right)} > ${width}`);
            const x = getComputedStyle(e).overflowX;
            if (r.width > 1 && x !== 'visible' && e.scrollWidth > e.clientWidth + 1) out.push(`${name(e)} clips ${e.scrollWidth} > ${e.clientWidth}`);
        }
        return out.slice(0, 12);""")


def fits_at_each_width(driver, view: str, ready) -> None:
    """At each of WIDTHS nothing overflows once `ready(driver)` holds; a full-page screenshot
    of each: bench-results/web-page-VIEW-WIDTH.png."""
    for width in WIDTHS:
        set_width(driver, width)
        wait_for(driver, ready, f"the {view} view at {width} px", timeout_s=30)
        assert overflows(driver) == [], (view, width)
        full_page_screenshot(driver, [REPO / "bench-results" / f"web-page-{view}-{width}.png"], width=width)
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def badges(driver) -> list[dict]:
    """Each face badge's rectangle, in image pixels."""
    return driver.execute_script("""
        return [...document.querySelectorAll('#result-boxes rect.face-label-bg')].map((r) => ({
            x: +r.getAttribute('x'), y: +r.getAttribute('y'), w: +r.getAttribute('width'), h: +r.getAttribute('height')}));""")


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
