"""Redis replies the one transient rule (streams/transient.py) must tell apart, shared by the
tests of its users (workers' runtime, producers' publishing) so each is held to every case."""

from __future__ import annotations

import redis

# Waited out and retried: also as the classes redis-py turns some of them into (their code
# stripped from the message), and inside a Lua script's error.
PASSING: list[BaseException] = [
    redis.ConnectionError("refused"),
    redis.TimeoutError("slow"),
    redis.exceptions.BusyLoadingError("loading the dataset"),
    redis.exceptions.OutOfMemoryError("command not allowed"),
    redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
    redis.exceptions.TryAgainError("Multiple keys request during rehashing of slot"),
    redis.exceptions.MasterDownError("Link with MASTER is down"),
    redis.ResponseError("BUSY Redis is busy running a script."),
    redis.ResponseError("MISCONF Redis is configured to save RDB snapshots, but ..."),
    redis.ResponseError("Error running script (call to f_1): @user_script:1: -MASTERDOWN Link is down"),
    redis.ResponseError(
        "Error running script (call to f_1): @user_script:1: @user_script: 1: -OOM command not allowed when used memory"
    ),
]
# Raised at once: a request error, BUSYGROUP, NOPERM, a script's own error, not a Redis error.
LASTING: list[BaseException] = [
    redis.ResponseError("BUSYGROUP Consumer Group name already exists"),
    redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    redis.exceptions.NoPermissionError("this user has no permissions"),
    redis.ResponseError("Error running script (call to f_1): @user_script:1: -ERR bad"),
    ValueError("not a Redis error"),
]
