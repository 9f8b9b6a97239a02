"""faces: a face-analysis pipeline on Redis Streams.

The one installed package. Its parts are the folders at the repository root, installed under
this name (pyproject.toml maps them): faces.streams (the Redis backbone), faces.consumers (the
stage adapters), faces.producer (what publishes images), faces.schemas (events and results),
faces.models (detection, landmarks, pose, quality, age and gender) and faces.ops (the `faces`
command and the process supervision behind it).
"""
