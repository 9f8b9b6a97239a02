"""The exit codes of the `faces` command, for ops/: defined once in faces/exits.py, where the
error base (faces/errors.py) and every layer below ops/ can read them."""

from faces.exits import BATCH_OVERRUN, FAILED, GRACE_EXPIRED, GROUP_LOST, INTERRUPTED, OK, SOME_ERRORS, USAGE

__all__ = ["BATCH_OVERRUN", "FAILED", "GRACE_EXPIRED", "GROUP_LOST", "INTERRUPTED", "OK", "SOME_ERRORS", "USAGE"]
