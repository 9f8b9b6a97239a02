"""The HTTP API (`faces serve`): a producer of uploads and a reader of results, no analysis.
app.py builds the FastAPI application; each other module here does one part of it."""
