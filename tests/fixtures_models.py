"""Fixtures for the analysis models (owned by the models work)."""
