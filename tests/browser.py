"""The web page's stack and browser for the real-Chromium tests (tests/web/test_web_page.py,
test_web_people.py; `make e2e`): `faces up --serve` on an embedded Redis, a headless Chromium
driven by selenium, and what those tests read from the page. Importing it skips the importing
test module when selenium is missing (`make e2e` installs it)."""

from __future__ import annotations

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

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: `pip install -e '.[dev]'`")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

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


@pytest.fixture(name="browser")
def browser_fixture(tmp_path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium for one test (the `browser` fixture: a test module imports
    browser_fixture to use it)."""
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
