"""faces: a face-analysis pipeline on Redis Streams, and the same analysis as a Python call.

    import faces
    result = faces.analyze("photo.jpg")     # the result document the pipeline writes

``analyze`` and ``FaceAnalyzer`` are faces.api's (the in-process analysis); they are imported
on first use, so that `import faces` (every worker process starts with it) loads no model code.

The one installed package. Its parts are the folders at the repository root, installed under
this name (pyproject.toml maps them): faces.streams (the Redis backbone), faces.consumers (the
stage adapters), faces.producer (what publishes images), faces.schemas (events and results),
faces.models (detection, landmarks, pose, quality, age and gender, and the analysis steps both
the stages and faces.api run) and faces.ops (the `faces` command and the process supervision
behind it).
"""

from __future__ import annotations

from typing import Any

__all__ = ["FaceAnalyzer", "analyze"]


def __getattr__(name: str) -> Any:
    """`faces.analyze` and `faces.FaceAnalyzer`, imported from faces.api when first asked for."""
    if name in __all__:
        from faces import api

        return getattr(api, name)
    raise AttributeError(f"module 'faces' has no attribute {name!r}")
