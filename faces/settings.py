"""Every default of the pipeline, each defined once, with what it means.

A default here is the value of anything a user, an operator or a caller can change: a `faces`
option, its environment variable (named after each line), a field of a settings object
(faces.streams.settings.RuntimeSettings, faces.ops.settings.AppSettings, JobOptions, Watcher,
WorkerPool). Everything else takes the value from here. Constants that belong to one mechanism
(page sizes, protocol limits) stay in the module they describe.

A leaf module: it imports nothing from the package, so any part may import it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DAY_S = 86400

# -- Where things are: every command's --state-dir, --storage, --output ---------------------------
STATE_DIR = Path(".faces")  # embedded Redis data (AOF, socket) and worker logs; FACES_STATE_DIR
STORAGE = Path("storage")  # one JSON result per image; FACES_STORAGE
OUTPUT = Path("output")  # annotated pictures; FACES_OUTPUT

# -- Submitting: `faces run`, `submit`, `watch`, `up --watch`, `replay` ---------------------------
HIGH_WATER = 500  # submission waits while this many images are in flight (0: off); FACES_HIGH_WATER
SETTLE_S = 1.0  # a dropped file is read once its size and mtime held this long; FACES_SETTLE_S
WATCH_POLL_S = 0.5  # how often the watcher looks at its folder
READ_RETRY_MIN_S = 1.0  # watcher: first wait after a failed read of a file; doubles up to the max
READ_RETRY_MAX_S = 300.0

MAX_IMAGE_BYTES = 64 << 20  # 64 MiB per file: a larger one gets an error result, unread
MAX_EVENT_BYTES = 1 << 20  # 1 MiB per event: ~60 faces with 68 points each fit many times over

# -- Analysis: `faces run` / `up` / `worker` options and faces.analyze() --------------------------
DETECTOR = "dlib-hog"  # face detector (models/detectors: measured choice there); FACES_DETECTOR
AGEGENDER = "auto"  # age/gender model: DeepFace when its weights are there, else bundled; FACES_AGEGENDER
MAX_PIXELS = 100_000_000  # a decoded photo larger than this is an error result (decompression bombs)
# Recognition (the embed stage) on by default: README "Recognition" says why; FACES_RECOGNITION
RECOGNITION = True
# Recognition's search: the server's vector index (RediSearch, optional) when it has one ("auto"),
# or never ("off": exact search in each process); streams/vectorindex.py. FACES_VECTOR_INDEX
VECTOR_INDEX = "auto"
VECTOR_INDEX_MODES = ("auto", "off")

# -- History and results --------------------------------------------------------------------------
RETENTION_S = 7 * DAY_S  # history the images stream keeps for replay; FACES_RETENTION_S
DEDUPE_WINDOW_S = RETENTION_S  # the same bytes dropped again within it are skipped: past it the first
# submission cannot be replayed either; its expiry bounds the dedupe memory
RESULT_TTL_S = 7 * DAY_S  # each image's latest result stays this long in Redis; FACES_RESULT_TTL_S

# -- Stage workers: `faces worker` options, RuntimeSettings ---------------------------------------
WORKERS = "auto"  # worker processes per stage for `faces run` / `up`; FACES_WORKERS
# Each stage's share of an image's CPU in the pipeline's steady state, with recognition off and
# on (docs/benchmark.md, "Steady state with recognition on and off": the CPU floor of the 12
# dlib-faces photos, 73 faces in 15 images, bundled age/gender; CPU s per image decode + detect
# 0.113, landmarks 0.023, agegender 0.040, sink 0.009, embed 0.369 when on, about 75 ms a face).
# `--workers auto` gives a stage ceil(cores x share) processes, at least one: on 2 cores detect
# gets 2 with recognition off; with it on, embed, three quarters of the work, gets 2 (with one
# embed worker the 2026-12-08 run kept only 1.28 of the 2 cores busy). Photos with more faces
# than these shift the work further to embed (and age/gender); `--workers` sets counts by hand.
STAGE_CPU_SHARE = {"detect": 0.61, "landmarks": 0.12, "agegender": 0.22, "embed": 0.0, "sink": 0.05}
STAGE_CPU_SHARE_RECOGNITION = {"detect": 0.20, "landmarks": 0.04, "agegender": 0.07, "embed": 0.67, "sink": 0.02}
# How much nicer (Unix niceness, added to the pool's own) each stage's workers run when `faces
# run` / `faces up` start them: later stages first. With one niceness for all, the kernel shares
# the cores equally among the runnable workers, not by the work each stage has: on 2 cores the
# two detect workers ran ahead, age/gender (45 % of the CPU on an AMX Xeon) got 0.65
# of a core, and finished the backlog alone on one core, the other idle (docs/benchmark.md,
# "Later stages first"). Weighted so, a stage gets the cores its input needs, the stages before
# it run on what is left, and the images in flight stay few. Steps of 5 (a weight of about 3x
# each): steps of 3 left age/gender at 0.8-0.9 of a core. Also keeps the user's own programs
# (niceness 0) ahead of a long analysis.
STAGE_NICENESS = {"detect": 15, "landmarks": 10, "agegender": 5, "embed": 0, "sink": 0}
BATCH = 8  # entries read at once and analysed as one batch; FACES_BATCH
BLOCK_MS = 1000  # how long one read waits for new entries (the stop latency); FACES_BLOCK_MS
CLAIM_IDLE_MS = 60_000  # entries idle this long in another consumer are claimed; FACES_CLAIM_IDLE_MS
CLAIM_EVERY_S = 5.0  # how often a worker looks for such entries
MAX_DELIVERIES = 3  # deliveries before an entry goes to the dead letters; FACES_MAX_DELIVERIES
RETRY_BACKOFF_S = 1.0  # first retry delay after a failed entry; grows with the attempt
RECONNECT_MIN_S = 0.5  # first wait after losing Redis (workers, producers); doubles up to the max
RECONNECT_MAX_S = 10.0
GRACE_S = 30.0  # after SIGTERM: time to finish the batch in hand; FACES_GRACE_S
TRIM_EVERY_S = 30.0  # how often a worker trims its input stream (safely)
HEARTBEAT_EVERY_S = 5.0  # how often a worker (and the watcher) records that it is consuming
HEARTBEAT_STALE_S = 120.0  # a heartbeat older than this: not consuming (stuck or gone);
# above the longest batch we measured (8 photos, DeepFace, ~40 s)
BATCH_LIMIT_S = 300.0  # a batch whose stage call runs longer is taken for hung: its claims are no
# longer renewed and its worker is replaced; 7.5x the longest batch we
# measured (~40 s, above); FACES_BATCH_LIMIT_S

# -- HTTP API: `faces serve`, `faces up --serve` (docs/http.md) -----------------------------------
HTTP_HOST = "127.0.0.1"  # address the API listens on; FACES_HTTP_HOST
HTTP_PORT = 8000  # port the API listens on; FACES_HTTP_PORT
HTTP_WAIT_MAX_S = 60.0  # the longest ?wait= an upload may ask for; FACES_HTTP_WAIT_MAX_S
HTTP_PAGE_LIMIT = 20  # results per page of GET /v1/results without ?limit=
HTTP_PAGE_MAX = 200  # the largest ?limit= of GET /v1/results
UPLOADS = Path("uploads")  # where the API keeps uploaded images (replay, pictures); FACES_UPLOADS
API_TOKEN_ENV = "FACES_API_TOKEN"  # env var holding the API's bearer token (unset: no token needed)
HTTP_UPLOADS_READING = 8  # upload bodies read at once; more: 503 + Retry-After; FACES_HTTP_UPLOADS_READING
HTTP_MAX_CONNECTIONS = 100  # open connections; past it the oldest still sending its head is dropped;
# FACES_HTTP_MAX_CONNECTIONS (keep it well under the open-files limit)
HTTP_HEAD_TIMEOUT_S = 10.0  # a request head not complete within this: connection closed; FACES_HTTP_HEAD_TIMEOUT_S
HTTP_BODY_TIMEOUT_S = 120.0  # an upload body not complete within this: 408; FACES_HTTP_BODY_TIMEOUT_S
HTTP_BODY_IDLE_S = 15.0  # ... or silent this long between two chunks: 408
HTTP_KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this (whole seconds: uvicorn's int)
# Host names the API answers to besides the bound address and the loopback names;
# FACES_HTTP_ALLOWED_HOSTS (comma-separated, `*`: any)
HTTP_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


# -- Models: where their files are and how they compute (ModelSettings) ---------------------------
AGEGENDER_PRECISION_ENV = "FACES_AGEGENDER_PRECISION"  # auto (unset), float32, bfloat16, opencv-float32
YUNET_MODEL_ENV = "FACES_YUNET_MODEL"  # opencv-yunet's ONNX file (unset: in DeepFace's weights folder)
TF_THREADS_ENV = "FACES_TF_THREADS"  # TensorFlow's intra-op threads (unset: TensorFlow's own count)
TF_INTER_THREADS_ENV = "FACES_TF_INTER_THREADS"  # its inter-op threads (unset: 1 with the above)
DEEPFACE_HOME_ENV = "DEEPFACE_HOME"  # DeepFace's own variable: weights in $DEEPFACE_HOME/.deepface/weights
CACHE_HOME_ENV = "XDG_CACHE_HOME"  # the sha256 cache of the weight files goes in $XDG_CACHE_HOME/faces


@dataclass(frozen=True)
class ModelSettings:
    """What the models take from the environment, read once by an edge (the CLI's commands, each
    worker's command, `faces.analyze`) and passed down as a parameter: models/ reads no variable.

    Strings are kept as given (the models check them and name the variable in their error);
    an empty or unset path is None."""

    precision: str = ""  # "" or "auto": the CPU decides (models/precision.py)
    yunet_model: Path | None = None
    deepface_home: Path | None = None  # None: the user's home, as DeepFace
    cache_home: Path | None = None  # None: the sha256 cache lives beside the weights
    tf_threads: str = ""
    tf_inter_threads: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ModelSettings:
        """The settings $FACES_AGEGENDER_PRECISION, $FACES_YUNET_MODEL, $DEEPFACE_HOME,
        $XDG_CACHE_HOME, $FACES_TF_THREADS and $FACES_TF_INTER_THREADS give (default: this process's)."""
        env = os.environ if environ is None else environ

        def path(name: str) -> Path | None:
            return Path(env[name]) if env.get(name) else None

        return cls(
            precision=env.get(AGEGENDER_PRECISION_ENV, ""),
            yunet_model=path(YUNET_MODEL_ENV),
            deepface_home=path(DEEPFACE_HOME_ENV),
            cache_home=path(CACHE_HOME_ENV),
            tf_threads=env.get(TF_THREADS_ENV, ""),
            tf_inter_threads=env.get(TF_INTER_THREADS_ENV, ""),
        )


def model_settings(given: ModelSettings | None) -> ModelSettings:
    """``given``, or, for a caller that passed none (a library call, a test), the ones this
    process's environment gives now: the edge's reading, done here and nowhere in models/."""
    return given if given is not None else ModelSettings.from_environ()
