"""Every exit code a `faces` command uses, defined once (docs/commands.md's table lists the same,
generated from ops/cli/docs.py). Below ops/ so that an error of any layer can carry its code
(faces/errors.py); ops/exits.py gives ops/ the same names."""

OK = 0
FAILED = 1  # could not run: Redis unreachable, missing input, a worker failing at start
USAGE = 2  # bad usage: an unknown option, a bad value, a missing argument
SOME_ERRORS = 3  # finished, but some images have error results or were dead-lettered
GRACE_EXPIRED = 4  # `faces worker`: SIGTERM's grace period ran out with entries in hand
GROUP_LOST = 5  # `faces worker`: its consumer group vanished from a stream with history
BATCH_OVERRUN = 6  # `faces worker`: a batch ran past --batch-limit-s (a hung stage call); it exits to be replaced
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
