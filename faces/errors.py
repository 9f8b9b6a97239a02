"""The project's one error base. Every layer may import it (it imports nothing of the project
but the exit codes), so each defines its own errors on it where it raises them.

A FacesError is a failure a user can act on: its message is the one line they read (cause and
remedy, no traceback). It carries what to do with it at each edge: the exit code a `faces`
command ends with (ops/failures.py) and, for errors that answer a request, the HTTP status the
API answers with (ops/web/errors.py). Every error class of the project derives from it: those a
caller catches and handles inside (a corrupt image that becomes an error result, a full
pipeline that is waited out) too, marked ``internal``, so that one that does escape is reported
as any unexpected exception is, by its type, with the code and status a bug gets.
"""

from __future__ import annotations

from faces import exits


class FacesError(Exception):
    """A failure the user can act on; `str(exc)` is its one line."""

    exit_code: int = exits.FAILED  # what a command exits with (faces/exits.py)
    # What the API answers when this error ends a request; None: not an answer to a client but a
    # failure of the server, answered 500 "internal error" and logged like any other.
    http_status: int | None = None
    # True: handled inside (or a failure of the code, not of the user's input): should one reach
    # an edge, it is reported as unexpected (ops/failures.py, ops/web/errors.py), not as a line
    # written for the user.
    internal: bool = False

    def http_headers(self) -> dict[str, str]:
        """Headers the API's answer carries (Retry-After, WWW-Authenticate)."""
        return {}
