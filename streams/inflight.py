"""The jobs still in the pipeline, as `faces run` needs them after a Ctrl-C: a rerun takes over
the jobs of its images that an earlier run left in flight instead of submitting the images
again, and an interrupted run withdraws its jobs that no worker has started.

A job in flight (its id in `names.INFLIGHT`) sits in exactly one pipeline stream at a time (a
stage forwards and acknowledges in one step, streams/commit.py): either not yet delivered to
that stream's group (after its last-delivered id) or pending in it. Both are bounded by the
backlog, so finding them never reads the images stream's history."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import redis

from faces.schemas import events
from faces.schemas.job import Job
from faces.streams import names, scripts
from faces.streams.reading import PAYLOAD_FIELD
from faces.streams.replies import Entry, entries, pending_id, string

PAGE = 500
_GROUP_OF = {route.input_stream: route.group for route in names.ROUTES.values()}


@dataclass(frozen=True)
class InFlight:
    """One job in flight: the stream entry that holds it now, and the job."""

    stream: str
    entry_id: str
    job: Job

    @property
    def job_id(self) -> str:
        return self.job["job_id"]


def jobs_in_flight(client: redis.Redis, streams: Iterable[str] = names.PIPELINE_STREAMS) -> list[InFlight]:
    """Every job still in flight on `streams`, with the entry that holds it (undelivered or
    pending)."""
    found: dict[str, InFlight] = {}
    for stream in streams:
        for entry_id, fields in _held_entries(client, stream, _GROUP_OF[stream]):
            try:
                job = events.decode(fields.get(PAYLOAD_FIELD, b""))
            except events.EventError:
                continue  # garbage is the dead-letter stream's business
            found[job["job_id"]] = InFlight(stream, entry_id, job)
    ids = list(found)
    live = client.smismember(names.INFLIGHT, ids) if ids else []
    return [found[job_id] for job_id, yes in zip(ids, live) if yes]


def _held_entries(client: redis.Redis, stream: str, group: str) -> Iterator[Entry]:
    """The entries of `stream` its group has not finished: pending ones, then undelivered ones."""
    pending = [pending_id(row) for row in _pending_rows(client, stream, group)]
    with client.pipeline(transaction=False) as pipe:
        for entry_id in pending:
            pipe.xrange(stream, min=entry_id, max=entry_id)
        for rows in pipe.execute() if pending else []:
            yield from entries(rows)  # none once the entry was deleted
    start = "(" + last_delivered(client, stream, group)
    while True:
        rows = entries(client.xrange(stream, min=start, max="+", count=PAGE))
        yield from rows
        if len(rows) < PAGE:
            return
        start = "(" + rows[-1][0]


def _pending_rows(client: redis.Redis, stream: str, group: str) -> Iterator[dict]:
    start = "-"
    while True:
        try:
            rows = client.xpending_range(stream, group, min=start, max="+", count=PAGE)
        except redis.ResponseError:  # no such stream or group: nothing pending
            return
        yield from rows
        if len(rows) < PAGE:
            return
        start = "(" + pending_id(rows[-1])


def last_delivered(client: redis.Redis, stream: str, group: str) -> str:
    """The group's last-delivered id on `stream`; "0-0" when the stream or group is missing
    (every entry is then undelivered)."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return "0-0"
    return next((string(g["last-delivered-id"]) for g in groups if string(g["name"]) == group), "0-0")


# KEYS: images stream, in-flight set; ARGV: group, then (entry id, job id, blob key) triples.
# An entry is withdrawn only while its id is after the group's last-delivered id, checked in
# the same step as the deletion: no worker has been handed it, and none will be.
_WITHDRAW = """
local last = '0-0'
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if groups['err'] then
  return 0
end
for _, group in ipairs(groups) do
  local fields = {}
  for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
  if fields['name'] == ARGV[1] then last = fields['last-delivered-id'] end
end
local function after(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
local withdrawn = 0
for i = 2, #ARGV, 3 do
  if after(ARGV[i], last) and redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    redis.call('DEL', ARGV[i + 2])
    redis.call('SREM', KEYS[2], ARGV[i + 1])
    withdrawn = withdrawn + 1
  end
end
return withdrawn
"""


def withdraw_unstarted(client: redis.Redis, job_ids: Iterable[str]) -> int:
    """Withdraw those of `job_ids` that still wait on the images stream for their first
    delivery: their entries deleted, their bytes and in-flight slots released, in one atomic
    step. Jobs a worker has started are left to finish. Returns how many were withdrawn."""
    wanted = set(job_ids)
    route = names.route(names.STAGE_ORDER[0])
    args: list[str] = [route.group]
    for held in jobs_in_flight(client, [route.input_stream]):
        if held.job_id in wanted:
            args += [held.entry_id, held.job_id, names.blob_key(held.job_id)]
    if len(args) == 1:
        return 0
    return int(scripts.call(client, _WITHDRAW, [route.input_stream, names.INFLIGHT], args))
