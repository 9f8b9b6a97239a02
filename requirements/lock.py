"""Writes requirements/image.lock: every package the Docker image installs, pinned, so that each
build resolves the same versions. `make lock` runs it inside the image's base (python:3.11-slim),
so that the pins suit that Python (a 3.11.2 there resolves some packages older than a newer 3.11
here); run it again after changing the dependencies in pyproject.toml (tests/runtime/test_image_lock.py
checks that the lock still satisfies them).

It asks pip to resolve the project's dependencies for the running Python without installing
anything, then makes two substitutions the image wants:
- `tensorflow` -> `tensorflow-cpu` at the same version: the same Python package without the
  CUDA build (which logs `failed call to cuInit` at every start on a machine without a GPU);
  tf-keras names `tensorflow`, so the image installs the lock with --no-deps;
- nothing else installs into cv2/ beside `opencv-contrib-python-headless` (pyproject.toml).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "image.lock"
SUBSTITUTES = {"tensorflow": "tensorflow-cpu"}
PROJECT = "faces-pipeline"


def resolve() -> dict[str, str]:
    """name -> version of everything `pip install .` would install into an empty environment."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--dry-run",
                "--ignore-installed",
                "--report",
                str(report),
                str(ROOT),
            ],
            check=True,
        )
        installs = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in installs}


def lock_lines(pins: dict[str, str]) -> list[str]:
    lines = []
    for name, version in sorted(pins.items()):
        if name == PROJECT:
            continue
        lines.append(f"{SUBSTITUTES.get(name, name)}=={version}")
    return lines


def main() -> None:
    header = [
        "# The Docker image's dependencies, pinned: written by `make lock` (requirements/lock.py).",
        f"# Resolved on Python {'.'.join(map(str, sys.version_info[:3]))}, linux x86_64. Installed with --no-deps.",
    ]
    LOCK.write_text("\n".join(header + lock_lines(resolve())) + "\n")
    print(f"wrote {LOCK.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
