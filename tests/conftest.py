"""Shared pytest set-up: fixtures live in small plugin modules, one per concern."""

pytest_plugins = [
    "tests.fixtures_redis",
    "tests.fixtures_models",
]
