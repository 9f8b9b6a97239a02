"""Stage name -> builder. Builders import their models lazily: a detect worker must not pay
for importing TensorFlow."""

from __future__ import annotations

import importlib

from faces.streams.names import STAGE_ORDER, route
from faces.streams.outcomes import Stage


def build_stage(name: str, options: dict) -> Stage:
    """Build the stage `name` (detect | landmarks | agegender | sink) with its options."""
    route(name)  # ValueError naming the valid stages
    module = importlib.import_module(f"faces.consumers.{name}")
    return module.build(options)


__all__ = ["build_stage", "STAGE_ORDER"]
