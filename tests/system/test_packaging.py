"""What `pip install .` puts on a machine: one top-level package, `faces`, and the `faces`
command; nothing named `models` or `streams` that would shadow the importing application's own;
no benchmark code (bench/ is run from the repository by `make bench`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.pipeline import REPO

# The files the Dockerfile copies: what a build from the project's own files sees.
SOURCES = [
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "faces",
    "streams",
    "consumers",
    "producer",
    "schemas",
    "models",
    "ops",
]


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(
            REPO / name,
            source / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if (REPO / name).is_dir() else {}),
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("*.whl")
    return wheel


def test_the_wheel_holds_one_package_the_command_and_no_benchmark(tmp_path):
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    dist_info = next(t for t in top if t.endswith(".dist-info"))
    assert top == {"faces", dist_info}
    assert "faces/schemas/result.schema.json" in names
    assert not [n for n in names if "bench" in n.split("/")[-1] or n.endswith("/synthetic.py")], (
        "benchmark code ships in the wheel"
    )
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "faces = faces.ops.cli:main" in entry_points

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # Installed without dependencies: enough to see what the package puts on sys.path.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-deps",
            "--quiet",
            str(wheel),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    python = str(venv / "bin" / "python")
    assert (venv / "bin" / "faces").is_file(), "the faces command was not installed"
    assert subprocess.run([python, "-c", "import faces"], cwd=tmp_path, capture_output=True).returncode == 0
    for generic in ("models", "streams", "schemas", "consumers", "producer", "ops", "bench"):
        done = subprocess.run([python, "-c", f"import {generic}"], cwd=tmp_path, capture_output=True, text=True)
        assert "ModuleNotFoundError" in done.stderr, f"`import {generic}` works in a clean install"
