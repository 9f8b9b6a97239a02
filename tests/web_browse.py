"""`faces browse` as a subprocess for the web tests (tests/web/test_web_listing.py, test_web_page.py),
and a file dropped on a page in the browser (test_web_people.py)."""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.pipeline import REPO
from tests.ports import free_port
from tests.waiting import wait_until


@contextlib.contextmanager
def browsing(storage: Path, output: Path, log: Path) -> Iterator[str]:
    """`faces browse` over `storage` and `output`, its output in `log`; yields its base URL. Its
    FACES_REDIS_URL names a port nothing listens on: it must need no Redis."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "FACES_API_TOKEN")}
    env["FACES_REDIS_URL"] = "redis://127.0.0.1:1/0"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "faces",
                "browse",
                "--storage",
                str(storage),
                "--output",
                str(output),
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, f"faces browse exited {process.returncode}: {log.read_text()}"
        try:
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout_s=60, what="faces browse to answer")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def drop_file(driver, zone_id: str, name: str, data: bytes, mime: str = "image/jpeg") -> None:
    """A file dropped on the element `zone_id` of the page in `driver` (selenium): a synthetic
    drop event, as WebDriver cannot drag files from the machine."""
    driver.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const dropped = new DataTransfer();
        dropped.items.add(new File([bytes], arguments[1], {type: arguments[2]}));
        document.getElementById(arguments[3]).dispatchEvent(
            new DragEvent("drop", {dataTransfer: dropped, bubbles: true, cancelable: true}));""",
        base64.b64encode(data).decode(),
        name,
        mime,
        zone_id,
    )
