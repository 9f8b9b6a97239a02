"""The Redis ACL rule of the user the pipeline logs in as on a shared server, defined once.

The README's Security section and compose.yaml carry this rule word for word
(tests/runtime/test_acl_rule.py checks both). It grants the commands the pipeline sends, the ones
inside its Lua scripts included, on its own keys only (names.ALL_KEYS), and nothing else: no
pub/sub channel, no FUNCTION or SCRIPT FLUSH, no FLUSHALL, no CONFIG, no XGROUP DESTROY or SETID.
`+@all -@dangerous` granted all of these, and on a 7.x server the pipeline user could replace
another application's functions.

Every command any `faces` command or worker sends is listed; add a command here when the code
in streams/ starts to send a new one (the ACL tests then run the pipeline under the new rule).
"""

from __future__ import annotations

from faces.streams import names

USER = "faces"
PASSWORD_PLACEHOLDER = "secret"  # what the README's rule shows in place of the password

PIPELINE_COMMANDS = (
    # connection: redis-py's health check, a database number in the URL, the client library's
    # name (redis-py sends it on connect and ignores a refusal, which would fill ACL LOG)
    "ping",
    "select",
    "client|setinfo",
    # server: `faces status` (memory), the shared clock (heartbeats, ordering, status)
    "info",
    "time",
    # strings and keys: image bytes, results, jobs, dedupe and publish memory, stats
    "get",
    "mget",
    "set",
    "del",
    "unlink",
    "exists",
    "expire",
    "incrby",
    # `faces purge`, result look-up by image id
    "scan",
    # hashes: heartbeats, lost-group check, watcher memory, jobs
    "hget",
    "hmget",
    "hset",
    "hsetnx",
    "hdel",
    "hexists",
    "hgetall",
    # the in-flight set
    "sadd",
    "srem",
    "scard",
    "sismember",
    "smismember",
    # streams
    "xadd",
    "xread",
    "xreadgroup",
    "xack",
    "xautoclaim",
    "xclaim",
    "xpending",
    "xdel",
    "xtrim",
    "xlen",
    "xrange",
    "xrevrange",
    "xinfo|groups",
    "xinfo|consumers",
    "xgroup|create",
    "xgroup|delconsumer",
    # recognition (streams/gallery.py): the gallery's change numbers, people, corrections
    "incr",
    "zadd",
    "zrem",
    "zrangebyscore",
    # the Lua scripts (EVALSHA; loaded again after a server restart) and transactions, optimistic
    # ones too (a stored result rewritten by a people operation: WATCH it, then MULTI/EXEC)
    "evalsha",
    "script|load",
    "multi",
    "exec",
    "watch",
    "unwatch",
)


def rule_words(password_word: str = f">{PASSWORD_PLACEHOLDER}") -> list[str]:
    """The words after `ACL SETUSER faces` (and after `user faces` in a config file). `reset`
    first: set again on an existing user, the rule replaces its passwords, keys and commands."""
    return [
        "reset",
        "on",
        password_word,
        f"~{names.ALL_KEYS}",
        "resetchannels",
        "-@all",
        *(f"+{command}" for command in PIPELINE_COMMANDS),
    ]


def rule(password_word: str = f">{PASSWORD_PLACEHOLDER}") -> str:
    return " ".join(rule_words(password_word))
