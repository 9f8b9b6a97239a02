"""Apply a batch's effects atomically, and only for entries this consumer still owns.

Each entry of a batch comes with the Redis commands it causes (forward to the next stream,
finish with a result, dead-letter); one Lua script checks, per entry, that the consumer still
holds it in the group's pending list, runs its commands and acknowledges it. An entry another
consumer took over meanwhile (it looked dead, or a renewal failed) is left alone: its new
holder will finish it, and this consumer's late copy can neither forward a duplicate nor
overwrite a result.

Because outputs and the XACK happen in one step, a crash at any point leaves the entry pending
for a retry, never half-forwarded. The consumer gathers what a batch causes in one BatchEffects
and hands it to `commit_batch`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import msgpack
import redis

from faces.schemas import events
from faces.schemas.job import Job
from faces.streams import deadletters, names, scripts
from faces.streams.names import StageRoute
from faces.streams.outcomes import SUPERSEDED, Finish
from faces.streams.reading import PAYLOAD_FIELD


@dataclass(frozen=True)
class DeadLetterNote:
    """A delivery going to the dead-letter stream, with what is known of its job."""

    entry_id: str
    attempt: int
    error_type: str
    message: str
    payload: bytes | None
    job: Job | None
    salvaged: bool = False  # job rebuilt from an undecodable payload: give it an error result


@dataclass
class EntryEffects:
    """The commands one entry causes; applied, with its XACK, only while we own the entry."""

    entry_id: str
    commands: list[list] = field(default_factory=list)
    require_owner: bool = True  # False for entries deleted from the stream (nobody owns them)


@dataclass
class BatchEffects:
    """Everything one batch causes, gathered by the consumer's steps and handed to
    `commit_batch` whole: the outputs and acknowledgements of a batch are one atomic step.

    `settled` entries carry their commands already (forwarded, finished, acknowledged as a late
    duplicate, or deleted from the stream); `dead` entries become dead letters at commit, after
    the settled ones."""

    payloads: dict[str, bytes | None]  # each entry's payload as read: its dead letter quotes it
    settled: list[EntryEffects] = field(default_factory=list)
    dead: list[DeadLetterNote] = field(default_factory=list)

    def settle(self, entry_id: str, commands: list[list], *, require_owner: bool = True) -> None:
        self.settled.append(EntryEffects(entry_id, commands, require_owner))

    @property
    def entry_ids(self) -> list[str]:
        """Every entry the batch is done with: after the commit, acknowledged or another's."""
        return [e.entry_id for e in self.settled] + [n.entry_id for n in self.dead]


@dataclass(frozen=True)
class CommitSettings:
    max_event_bytes: int
    blob_ttl_s: int  # bytes of a job the sink gave up on are kept this long, for a retry
    result_ttl_s: int  # how long Redis keeps each image's latest result


# KEYS[1] input stream, KEYS[2] its held records (names.held_key: an acknowledged entry's goes).
# ARGV: group, consumer, inflight set, results stream, results maxlen,
# stats key, stats ttl, msgpack plan [[entry id, require owner (0/1), [command, ...]], ...],
# the status announced for a result not kept (outcomes.SUPERSEDED).
# A command is a Redis command, or FINISH (below). Returns the ids skipped as not ours.
_COMMIT = """
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local inflight, results, results_maxlen = ARGV[3], ARGV[4], ARGV[5]
local plan = cmsgpack.unpack(ARGV[8])

local function owned(id)
  local row = redis.call('XPENDING', stream, group, id, id, 1)[1]
  return row ~= nil and row[2] == consumer
end

-- Keep in step with schemas.result.supersedes: a newer submission wins; within one job an
-- error never replaces ok.
local function supersedes(job_id, status, submitted_at, old_json)
  local ok, old = pcall(cjson.decode, old_json)
  if not ok or type(old) ~= 'table' then return true end
  local old_job = type(old.job_id) == 'string' and old.job_id or ''
  local old_at = type(old.submitted_at) == 'string' and old.submitted_at or ''
  if old_job == job_id then return not (old.status == 'ok' and status == 'error') end
  if submitted_at ~= old_at then return submitted_at > old_at end
  return job_id > old_job
end

local function finish(key, blob, json, ttl, job_id, image_id, status, submitted_at, upload, job, job_field, pixels)
  local old = redis.call('GET', key)
  local kept = not old or supersedes(job_id, status, submitted_at, old)
  if kept then
    redis.call('SET', key, json, 'EX', ttl)
  end
  -- An image the HTTP API took in: the job's own result too, which no other job of the image
  -- replaces (GET /v1/jobs/<job id>, ?wait). Within the job, the same rule as above.
  if redis.call('EXISTS', upload) == 1 then
    local own = redis.call('HGET', job, job_field)
    if not own or supersedes(job_id, status, submitted_at, own) then
      redis.call('HSET', job, job_field, json)
      redis.call('EXPIRE', job, ttl)
    end
  end
  redis.call('DEL', blob, pixels)
  -- Only a job's first finish announces it: a late duplicate finds it gone from inflight.
  -- The announcement says what was stored: a result a newer one outranks is "superseded".
  if redis.call('SREM', inflight, job_id) == 1 then
    redis.call('XADD', results, 'MAXLEN', '~', results_maxlen, '*',
               'image_id', image_id, 'job_id', job_id, 'status', kept and status or ARGV[9])
  end
end

local lost, acked = {}, 0
for _, item in ipairs(plan) do
  local id, require_owner, commands = item[1], item[2], item[3]
  if require_owner == 0 or owned(id) then
    for _, cmd in ipairs(commands) do
      if cmd[1] == 'FINISH' then finish(unpack(cmd, 2)) else redis.call(unpack(cmd)) end
    end
    redis.call('XACK', stream, group, id)
    redis.call('HDEL', KEYS[2], id)
    acked = acked + 1
  else
    lost[#lost + 1] = id
  end
end
if acked > 0 then
  redis.call('INCRBY', ARGV[6], acked)
  redis.call('EXPIRE', ARGV[6], ARGV[7])
end
return lost
"""


def commit(client: redis.Redis, route: StageRoute, consumer: str, effects: list[EntryEffects]) -> list[str]:
    """Apply `effects` of owned entries and acknowledge them, atomically; the ids not ours."""
    if not effects:
        return []
    plan = [[e.entry_id, 1 if e.require_owner else 0, e.commands] for e in effects]
    bucket = names.stats_key(route.name, int(time.time()) // names.STATS_BUCKET_S)
    # Raw (not bin) msgpack strings: the Lua cmsgpack of Redis 6.2 does not read the bin type.
    packed = msgpack.packb(plan, use_bin_type=False)
    lost = scripts.call(
        client,
        _COMMIT,
        [route.input_stream, names.held_key(route.input_stream)],
        [
            route.group,
            consumer,
            names.INFLIGHT,
            names.RESULTS,
            names.RESULTS_MAXLEN,
            bucket,
            names.STATS_TTL_S,
            packed,
            SUPERSEDED,
        ],
    )
    return [i.decode() if isinstance(i, bytes) else i for i in lost]


def commit_batch(
    client: redis.Redis, route: StageRoute, consumer: str, batch: BatchEffects, settings: CommitSettings
) -> list[str]:
    """Commit everything `batch` causes, as `commit` does; the ids another consumer holds now."""
    dead = [EntryEffects(n.entry_id, dead_letter(route, n, settings)) for n in batch.dead]
    return commit(client, route, consumer, batch.settled + dead)


def forward(route: StageRoute, payload: bytes) -> list:
    return ["XADD", route.output_stream, "*", PAYLOAD_FIELD, payload]


def finish(fin: Finish, settings: CommitSettings) -> list:
    job = fin.job
    return [
        "FINISH",
        names.result_key(job["image_id"]),
        names.blob_key(job["job_id"]),
        fin.result_json.encode(),
        settings.result_ttl_s,
        job["job_id"],
        job["image_id"],
        fin.status,
        fin.submitted_at,
        names.upload_key(job["image_id"]),
        names.job_key(job["job_id"]),
        names.JOB_RESULT_FIELD,
        names.pixels_key(job["job_id"]),
    ]


def dead_letter(route: StageRoute, note: DeadLetterNote, settings: CommitSettings) -> list[list]:
    """The dead letter itself, and what becomes of its job: an error result where one can still
    be written (the sink writes it), else its bytes released after a while."""
    job = note.job
    job_id = job["job_id"] if job else None
    image_id = job["image_id"] if job else None
    if job is None and note.payload is not None:
        job_id, image_id = events.peek_ids(note.payload)
    letter = deadletters.fields(
        stage=route.name,
        stream=route.input_stream,
        entry_id=note.entry_id,
        error_type=note.error_type,
        message=note.message,
        deliveries=note.attempt,
        job_id=job_id,
        image_id=image_id,
        payload=note.payload,
    )
    # Exact trimming: dead letters are rare, and the cap is what bounds their memory.
    commands = [
        [
            "XADD",
            names.DEAD_LETTERS,
            "MAXLEN",
            names.DEAD_LETTERS_MAXLEN,
            "*",
            *[part for pair in letter.items() for part in pair],
        ]
    ]
    if job is None:
        return commands
    if route.output_stream is not None or note.salvaged:
        # The image still gets a result: the sink writes an error result for it. (A salvaged
        # job is valid by construction, so even at the sink this cannot loop.)
        failed = events.with_error(job, route.name, note.error_type, note.message)
        failed["faces"] = []  # keep the error event small whatever made the job fail
        commands.append(["XADD", names.SINK_INPUT, "*", PAYLOAD_FIELD, events.encode(failed, settings.max_event_bytes)])
    else:
        # The sink itself gave up on a valid job: no result, but the bytes must not be held
        # forever, nor its in-flight slot.
        commands.append(["SREM", names.INFLIGHT, job["job_id"]])
        commands.append(["EXPIRE", names.blob_key(job["job_id"]), settings.blob_ttl_s])
        commands.append(["EXPIRE", names.pixels_key(job["job_id"]), settings.blob_ttl_s])
    return commands
