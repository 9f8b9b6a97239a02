"""Running the pipeline's Lua scripts: each one is loaded once per server and called by its sha.

Scripts are how a consumer checks that it still owns an entry and acts on it in one atomic
step: between a separate check and the write another consumer could take the entry over.
They declare the stream in KEYS and reach a few other pipeline keys by name, which standalone
Redis allows (a Redis Cluster would need them all in one hash slot; see docs/deployment.md "Past one Redis").
"""

from __future__ import annotations

import redis
from redis.commands.core import Script

_loaded: dict[str, Script] = {}


def call(client: redis.Redis, source: str, keys: list, args: list):
    """Run the Lua `source` with `keys` and `args` (EVALSHA, loading it when the server lacks it)."""
    script = _loaded.get(source)
    if script is None:
        script = _loaded[source] = client.register_script(source)
    return script(keys=keys, args=args, client=client)
