"""Every stream, group and key name the pipeline uses, in one place.

Data flows one way: images -> detect -> landmarks -> agegender -> sink. Each stage is a consumer
group named after the stage, on the stream that feeds it; its output is the next stage's input.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "faces"

IMAGES = f"{PREFIX}:images"  # submitted images (claim-check events, no pixels)
DETECTED = f"{PREFIX}:detected"  # boxes found
LANDMARKED = f"{PREFIX}:landmarked"  # boxes + 68 points + pose + quality
ANALYZED = f"{PREFIX}:analyzed"  # ... + age and gender
RECOGNIZED = f"{PREFIX}:recognized"  # ... + who each face is (embed; passed through when off): the sink's input
RESULTS = f"{PREFIX}:results"  # one announcement per finished image
DEAD_LETTERS = f"{PREFIX}:dead"  # entries no stage could process, with the reason

INFLIGHT = f"{PREFIX}:inflight"  # set of job ids whose image bytes are still held
GROUPS_CREATED = f"{PREFIX}:groups"  # hash "stream|group" -> when we created it (lost-group check)
ALL_KEYS = f"{PREFIX}:*"  # pattern of every key named here (what `faces purge` deletes)
RESULTS_MAXLEN = 100_000  # announcements kept (approximate trim)
DEAD_LETTERS_MAXLEN = 10_000  # dead letters kept (oldest dropped first); see README "Memory"


def blob_key(job_id: str) -> str:
    """Key holding one submission's image bytes until the sink has written its result.

    Always derived from the job id, never taken from an event: an event cannot make a stage
    delete or expire a key of its choosing."""
    return f"{PREFIX}:blob:{job_id}"


def pixels_key(job_id: str) -> str:
    """Key holding the decoded pixels the stages after detect work on (the regions around each
    face, models/regions.py), stored by detect's commit so that no later stage decodes the photo
    again. Released with the blob (streams/commit.py), derived from the job id like it."""
    return f"{PREFIX}:pixels:{job_id}"


def published_key(job_id: str) -> str:
    """A job id published lately -> its entry id, expiring after
    publishing.PUBLISHED_MEMORY_S: a publish sent again after a lost reply adds nothing."""
    return f"{PREFIX}:published:{job_id}"


def held_key(stream: str) -> str:
    """Hash entry id -> a small record of its job (streams/reading.py `held_record`), for the
    entries of `stream` a consumer took and has not acknowledged yet: what an entry deleted from
    the stream while pending is still known by, so that its job gets an error result and its
    in-flight slot and bytes are released. Fields leave with the entry's acknowledgement."""
    return f"{stream}:held"


def seen_key(sha256: str) -> str:
    """Drop-folder dedupe: present (with a TTL) while these bytes count as already published."""
    return f"{PREFIX}:seen:{sha256}"


def watch_key(folder_id: str) -> str:
    """The watcher's memory of one drop folder: path -> "size:mtime_ns" of files handled."""
    return f"{PREFIX}:watch:{folder_id}"


STATS_BUCKET_S = 10  # throughput counters: one key per stage per 10 s
STATS_TTL_S = 600


def stats_key(stage: str, bucket: int) -> str:
    """Counter of entries `stage` handled during the 10-second `bucket` (epoch // 10)."""
    return f"{PREFIX}:stats:{stage}:{bucket}"


HEARTBEATS = f"{PREFIX}:heartbeats"  # hash "STAGE:CONSUMER" -> that worker's last heartbeat (JSON)


def result_key(image_id: str) -> str:
    """Key holding the latest JSON result of one image."""
    return f"{PREFIX}:result:{image_id}"


def upload_key(image_id: str) -> str:
    """The HTTP API's record of an image it published: the latest job id, expiring with the
    result (GET /v1/results/<image id> answers 202 while that job is in flight)."""
    return f"{PREFIX}:upload:{image_id}"


def job_key(job_id: str) -> str:
    """The HTTP API's record of one job of an image it took in, a hash expiring with the
    results: JOB_IMAGE_FIELD (its image id, noted when published) and JOB_RESULT_FIELD (the
    job's own result, set by the sink), which a newer job of the same image never replaces
    (GET /v1/jobs/<job id>)."""
    return f"{PREFIX}:job:{job_id}"


# Recognition (streams/gallery.py): descriptors, people, corrections. Users' own data, not
# pipeline state: `faces purge` leaves these keys alone unless asked (`--people`).
RECOGNITION_PREFIX = f"{PREFIX}:rec"
GALLERY_SEQUENCE = f"{RECOGNITION_PREFIX}:gallery:sequence"  # counter: the last change's number
GALLERY_CHANGES = f"{RECOGNITION_PREFIX}:gallery:changes"  # sorted set image id -> its last change's number
GALLERY_GENERATION = f"{RECOGNITION_PREFIX}:gallery:generation"  # counter, bumped by erasures
PEOPLE = f"{RECOGNITION_PREFIX}:people"  # hash person id -> msgpack {name (None: a cluster), created_at}
PEOPLE_NAMES = f"{RECOGNITION_PREFIX}:people:names"  # hash name (casefolded) -> person id
PEOPLE_VERSION = f"{RECOGNITION_PREFIX}:people:version"  # counter, bumped by every change to people
# The server's vector index, when used (streams/vectorindex.py): one hash per face under
# VECTOR_PREFIX, the index over them, and the gallery sequence number up to which every image's
# hashes are known to be in step with its record.
VECTOR_PREFIX = f"{RECOGNITION_PREFIX}:vec:"
VECTOR_INDEX = f"{RECOGNITION_PREFIX}:vec:index"  # the FT index's name, not a key
VECTOR_SYNCED = f"{RECOGNITION_PREFIX}:gallery:indexed"  # counter: a GALLERY_SEQUENCE number


def gallery_key(image_id: str) -> str:
    """One image's faces as recognition saw them: descriptors and who each face was judged to be."""
    return f"{RECOGNITION_PREFIX}:gallery:{image_id}"


def references_key(person_id: str) -> str:
    """Hash reference id -> descriptor: the faces a named person is recognised by."""
    return f"{RECOGNITION_PREFIX}:references:{person_id}"


def corrections_key(image_id: str) -> str:
    """Hash face index -> msgpack list of the people and clusters that face is not."""
    return f"{RECOGNITION_PREFIX}:corrections:{image_id}"


JOB_IMAGE_FIELD = "image_id"
JOB_RESULT_FIELD = "result"


@dataclass(frozen=True)
class StageRoute:
    """Where a stage reads from (its group lives on that stream) and where it writes to."""

    name: str
    input_stream: str
    output_stream: str | None  # None: the sink, which finishes jobs instead of forwarding

    @property
    def group(self) -> str:
        return self.name


ROUTES: dict[str, StageRoute] = {
    "detect": StageRoute("detect", IMAGES, DETECTED),
    "landmarks": StageRoute("landmarks", DETECTED, LANDMARKED),
    "agegender": StageRoute("agegender", LANDMARKED, ANALYZED),
    "embed": StageRoute("embed", ANALYZED, RECOGNIZED),
    "sink": StageRoute("sink", RECOGNIZED, None),
}
STAGE_ORDER: tuple[str, ...] = tuple(ROUTES)
SINK_INPUT = ROUTES["sink"].input_stream  # where an error job goes to get its error result
PIPELINE_STREAMS: tuple[str, ...] = (IMAGES, DETECTED, LANDMARKED, ANALYZED, RECOGNIZED)


def route(stage: str) -> StageRoute:
    """The route of a stage by name; ValueError naming the valid stages otherwise."""
    try:
        return ROUTES[stage]
    except KeyError:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGE_ORDER)}") from None


# The transport benchmark's own pair of streams (bench/hop.py, outside the product): named here
# so that every key the project writes is listed in one module.
BENCH_PING = f"{PREFIX}:bench:ping"
BENCH_PONG = f"{PREFIX}:bench:pong"
