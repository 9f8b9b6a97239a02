"""Fixtures that start a real redis-server."""
