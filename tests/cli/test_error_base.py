"""Every error class of the project derives from `faces.errors.FacesError` (issue 23 item 3), so
that the CLI (ops/failures.py) and the API (ops/web/errors.py) read its exit code and HTTP status
with `isinstance`, and a new class cannot slip past them. Read from the source (ast), so the
check imports nothing heavy."""

from __future__ import annotations

import ast
import builtins

from tests.pipeline import REPO

PACKAGE_FOLDERS = ("faces", "schemas", "models", "streams", "consumers", "producer", "ops")
BUILTIN_ERRORS = {
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
}


def base_names(node: ast.ClassDef) -> list[str]:
    """The last part of each base's name (`errors.FacesError` -> FacesError)."""
    names = []
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
    return names


def project_classes() -> dict[str, tuple[str, list[str]]]:
    """Every class defined in the package: name -> (where, base names)."""
    classes = {}
    for folder in PACKAGE_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    classes[node.name] = (f"{path.relative_to(REPO)}:{node.lineno}", base_names(node))
    return classes


def test_every_error_class_of_the_project_derives_from_faces_error():
    """Of the classes that are exceptions (a builtin exception or a library's error among their
    bases, directly or through another class of ours), none lacks FacesError in its chain.
    Before the last of them moved onto the base: JobInterrupted, BadWorkerCounts and
    BundledModelMissing (and the people's errors) were listed here."""
    classes = project_classes()

    def chain(name: str, seen: frozenset = frozenset()) -> set[str]:
        if name in seen or name not in classes:
            return {name}
        found = {name}
        for base in classes[name][1]:
            found |= chain(base, seen | {name})
        return found

    library_errors = {"RedisError", "ResponseError", "HTTPException", "ClickException", "Exit", "Abort"}
    errors = {n for n in classes if (chain(n) - {n}) & (BUILTIN_ERRORS | library_errors | {"FacesError"})}
    without = sorted(f"{classes[n][0]} {n}" for n in errors if n != "FacesError" and "FacesError" not in chain(n))
    assert len(errors) > 50, "the scan found the project's error classes"
    assert without == []
