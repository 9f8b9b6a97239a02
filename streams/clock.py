"""Redis's clock: the one clock every producer, worker and reader of a pipeline shares.

Times that order things across machines (which submission is newer, how old a heartbeat is)
are read here, not from the local clock: a submitter whose clock runs ahead would otherwise
make its results outrank every later replay (issue 22)."""

from __future__ import annotations

import redis


def server_now(client: redis.Redis) -> float:
    """Seconds since the epoch on the Redis server's clock (TIME), to the microsecond."""
    seconds, micros = client.time()
    return seconds + micros / 1e6
