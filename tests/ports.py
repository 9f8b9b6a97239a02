"""TCP ports for the servers a test starts (`faces serve`, `faces up --serve`, `faces browse`,
compose's published ports).

Asking the kernel for port 0 and handing the number to a child process races: between the probe
closing and the child binding, the other xdist worker's test may be given the same number, or
an outgoing connection may take it as its source port (both come from the kernel's ephemeral
range, 32768-60999 here). Then a test's client talks to another test's server: a CI run saw an
upload answered 202 by a server in front of another test's Redis. So each xdist worker picks
from its own block below the ephemeral range, never handing out the same number twice in a
run, and probes that nothing holds it."""

from __future__ import annotations

import itertools
import os
import socket

FIRST_PORT = 20000  # below the ephemeral range, so no outgoing connection takes one
BLOCK = 1500  # ports per xdist worker: 8 workers fit below 32768


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw0", "gw1", ...; absent without xdist
    return int(worker.removeprefix("gw") or 0) % 8


_candidates = itertools.cycle(range(FIRST_PORT + _worker_index() * BLOCK, FIRST_PORT + (_worker_index() + 1) * BLOCK))


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on, from this worker's own block."""
    for _ in range(BLOCK):
        port = next(_candidates)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in this worker's block of {BLOCK}")


def closed_port() -> int:
    """A port nothing listens on (bound once and closed): for "unreachable" tests, where a later
    taker of the number would at worst answer something else than a weights server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
