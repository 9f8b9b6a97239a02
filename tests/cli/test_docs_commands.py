"""Issue 26 (docs that run as written): every fenced command block of README.md, docs/*.md and
data/README.md is run exactly as written, so the documentation cannot drift from the commands.

A command block is a fence without a language (or sh/bash/shell/console); diagrams are tagged
`text`, examples `json`/`python`. The comment on the line before a command block says how it runs:

- `<!-- run: after faces run data -->`: in a folder holding a copy of data/, where
  `faces run data` has run (the README's Quick start: results in storage/);
- `<!-- run: with faces up --serve -->`: beside a `faces up --serve` started in such a folder
  and ready; the one substitution made in the text is the API's address, 127.0.0.1:8000 in the
  docs, for a free port (tests run side by side);
- `<!-- not run: REASON -->`: never run (Docker, long benchmarks, long-running servers);
- no comment: in a fresh folder holding a copy of data/.

A block runs as `bash -e -o pipefail`, with the `faces` of this checkout first on PATH and a
fresh state dir, storage and output in its folder; it must exit 0 and no HTTP answer it prints may
be an API error (`{"error": ...}`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.images import DATA
from tests.pipeline import REPO
from tests.ports import free_port
from tests.waiting import wait_until

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "data" / "README.md"]
COMMAND_TAGS = {"", "sh", "bash", "shell", "console"}
OTHER_TAGS = {"text", "json", "python"}
AFTER_RUN = "run: after faces run data"
WITH_SERVE = "run: with faces up --serve"
NOT_RUN = re.compile(r"not run: \S.*")
DOC_ADDRESS = "127.0.0.1:8000"
API_ERROR = '{"error":'
_FENCE = re.compile(r"^\s*```(\S*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    tag: str
    text: str
    marker: str | None  # the comment on the line before, without <!-- -->

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def fenced_blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text().splitlines()
    at = 0
    while at < len(lines):
        opening = _FENCE.match(lines[at])
        if opening is None:
            at += 1
            continue
        end = next(
            i for i in range(at + 1, len(lines)) if _FENCE.match(lines[i]) and not _FENCE.match(lines[i]).group(1)
        )
        before = _MARKER.match(lines[at - 1]) if at else None
        indent = len(lines[at]) - len(lines[at].lstrip())
        text = "\n".join(line[indent:] for line in lines[at + 1 : end]) + "\n"
        yield Block(path, at + 1, opening.group(1), text, before.group(1) if before else None)
        at = end + 1


def command_blocks() -> list[Block]:
    return [b for path in DOCS for b in fenced_blocks(path) if b.tag in COMMAND_TAGS]


def test_every_command_block_says_how_it_runs():
    """Every fenced block is a command block or tagged as another kind; every command block
    either runs (no comment, or a known `run:` comment) or says why it is not run."""
    blocks = [b for path in DOCS for b in fenced_blocks(path)]
    assert [str(b) for b in blocks if b.tag not in COMMAND_TAGS | OTHER_TAGS] == []
    commands = command_blocks()
    assert len(commands) >= 15
    unknown = [
        f"{b}: {b.marker}"
        for b in commands
        if b.marker not in (None, AFTER_RUN, WITH_SERVE) and not NOT_RUN.fullmatch(b.marker)
    ]
    assert unknown == []


def block_env(folder: Path) -> dict[str, str]:
    """This checkout's `faces` first on PATH; no Redis URL, token or folders from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACES_") and k not in ("REDIS_URL", "COLUMNS")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        FACES_WORKERS=os.environ.get("FACES_WORKERS", "detect=1"),
    )
    return env


def run_block(block: Block, folder: Path, address: str = DOC_ADDRESS) -> str:
    """Run `block` in `folder`; its output, after checking it exited 0 with no API error."""
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block.text.replace(DOC_ADDRESS, address)],
        cwd=folder,
        env=block_env(folder),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"{block} exited {done.returncode}:\n{block.text}\n{done.stderr[-3000:]}"
    assert API_ERROR not in done.stdout.replace(" ", ""), f"{block} got an API error:\n{done.stdout[-3000:]}"
    return done.stdout


def data_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    shutil.copytree(DATA, folder / "data")
    return folder


def test_blocks_without_a_comment_run_in_a_fresh_folder(tmp_path):
    """Command blocks without a comment run as written in a fresh folder."""
    for block in [b for b in command_blocks() if b.marker is None]:
        run_block(block, data_folder(tmp_path / f"b{block.line}"))


def test_blocks_after_faces_run_data(tmp_path):
    """After `faces run data` (what `make run` does), the blocks marked so run as written; the
    README's result example has the keys of a real result in the same order, with an absolute
    path, and data/README.md's face counts are what the run found."""
    folder = data_folder(tmp_path)
    done = subprocess.run(
        ["faces", "run", "data"], cwd=folder, env=block_env(folder), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    results = {p.stem.rsplit("-", 1)[0]: json.loads(p.read_text()) for p in (folder / "storage").glob("*.json")}
    check_result_example(results["group"])
    check_sample_face_counts(results)
    blocks = [b for b in command_blocks() if b.marker == AFTER_RUN]
    assert blocks
    for block in blocks:
        run_block(block, folder)


def check_result_example(real: dict) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## The result of one image") :]
    example = json.loads(section[section.index("```json\n") + 8 : section.index("\n```", section.index("```json"))])
    assert list(example) == list(real)
    assert list(example["image"]) == list(real["image"]) and Path(example["image"]["path"]).is_absolute()
    assert Path(real["image"]["path"]).is_absolute()
    assert list(example["faces"][0]) == list(real["faces"][0])
    for key in ("pose", "quality", "gender", "box"):
        assert list(example["faces"][0][key]) == list(real["faces"][0][key]), key
    assert list(example["models"]) == list(real["models"])


def check_sample_face_counts(results: dict[str, dict]) -> None:
    """data/README.md's table: `| `NAME.jpg` | size | what | N... |` with N the faces found."""
    rows = re.findall(r"^\| `(\w+)\.jpg` \|[^|]*\|[^|]*\| (\d+)", (DATA / "README.md").read_text(), flags=re.M)
    assert {name: int(count) for name, count in rows} == {name: len(r["faces"]) for name, r in results.items()}


@pytest.fixture
def serving(tmp_path) -> Iterator[tuple[Path, str]]:
    """`faces up --serve` in a folder with data/, on a free port, every stage ready."""
    folder = data_folder(tmp_path)
    address = f"127.0.0.1:{free_port()}"
    log = open(tmp_path / "up.log", "wb")
    process = subprocess.Popen(
        ["faces", "up", "--serve", "--port", address.split(":")[1]],
        cwd=folder,
        env=block_env(folder),
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def ready() -> bool:
        assert process.poll() is None, (tmp_path / "up.log").read_text()
        try:
            return httpx.get(f"http://{address}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout_s=180, interval_s=0.5, what="faces up --serve to be ready")
        yield folder, address
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_blocks_with_faces_up_serve(serving):
    """With `faces up --serve` running, the blocks marked so (the curl examples of the README and
    docs/http.md) run as written and no answer is an API error."""
    folder, address = serving
    blocks = [b for b in command_blocks() if b.marker == WITH_SERVE]
    assert len(blocks) >= 9
    for block in blocks:
        run_block(block, folder, address)
