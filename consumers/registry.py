"""The stage adapters by name, and each one's route: the one place that says which streams a
stage reads and writes (their names are in streams/names.py), so the adapters name none.

Builders import their models lazily: a detect worker must not pay for importing TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import ClassVar, TypeVar

from faces.streams.names import STAGE_ORDER, StageRoute, route
from faces.streams.outcomes import Stage


class Routed:
    """Base of the stage adapters: `routed` gives the class its stage's route."""

    route: ClassVar[StageRoute]


Adapter = TypeVar("Adapter", bound=type[Routed])


def routed(stage: str) -> Callable[[Adapter], Adapter]:
    """Class decorator naming the stage an adapter runs: the registry gives the class that
    stage's route (the `route` of the Stage protocol), so an adapter built directly, as tests
    do, is routed exactly as one built by `build_stage`."""
    stage_route: StageRoute = route(stage)  # ValueError naming the valid stages

    def give_route(adapter: Adapter) -> Adapter:
        adapter.route = stage_route
        return adapter

    return give_route


def build_stage(name: str, options: dict) -> Stage:
    """Build the stage `name` (detect | landmarks | agegender | sink) with its options."""
    route(name)  # ValueError naming the valid stages, before importing anything
    module = importlib.import_module(f"faces.consumers.{name}")
    return module.build(options)


__all__ = ["build_stage", "routed", "Routed", "STAGE_ORDER"]
