"""Issue 14: the image resolves the same versions every time (requirements/image.lock), installs
them before the source is copied, and carries one OpenCV and TensorFlow's CPU build."""

from __future__ import annotations

import re

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.pipeline import REPO

LOCK = REPO / "requirements" / "image.lock"
IMAGE_NAME = {"tensorflow": "tensorflow-cpu"}  # what the image installs in place of a dependency


def pins() -> dict[str, str]:
    found = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            found[canonicalize_name(name)] = version
    return found


def test_the_lock_pins_every_dependency_within_pyproject_ranges():
    """Fails when pyproject.toml changed and `make lock` was not run."""
    locked = pins()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(IMAGE_NAME.get(requirement.name, requirement.name))
        assert name in locked, f"{requirement.name} is not in {LOCK.name}: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{name}=={locked[name]} is outside {requirement}: run `make lock`"
        )


def test_the_image_carries_one_opencv_and_tensorflows_cpu_build():
    locked = pins()
    assert [n for n in locked if n.startswith("opencv")] == ["opencv-contrib-python-headless"]
    assert "tensorflow" not in locked and "tensorflow-cpu" in locked
    assert not [n for n in locked if n.startswith("nvidia")]


def test_dependencies_are_installed_from_the_lock_before_the_source_is_copied():
    steps = [line for line in (REPO / "Dockerfile").read_text().splitlines() if re.match(r"(COPY|RUN) ", line)]
    install = next(i for i, s in enumerate(steps) if "-r requirements/image.lock" in s)
    assert "--no-deps" in steps[install]
    first_source = next(i for i, s in enumerate(steps) if s.startswith("COPY faces "))
    assert install < first_source
