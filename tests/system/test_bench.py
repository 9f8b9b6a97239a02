"""The benchmark's building blocks, each run once on one or two photos from data/.

The full `python -m bench` (`make bench`) takes minutes; these prove in well under a minute,
offline, that each piece measures what it claims: stages alone on decoded photos, one transport
hop of a real landmarked event through a real redis-server, the cold-run timeline read from JSON
logs, and the derived ratios, overhead and target verdicts.
"""

from __future__ import annotations

import json

import pytest

from bench import report as bench_report
from bench import stages as bench_stages
from bench.hop import time_hops
from bench.machine import CpuWatch
from bench.pipeline import cold_timeline
from bench.transport import landmarked_job
from faces.schemas import events
from tests.images import DATA

PHOTOS = [DATA / "group.jpg", DATA / "astronaut.jpg"]


@pytest.fixture(scope="module")
def measured(default_detector, landmarker):
    """Both photos decoded, detected and landmarked once, as the bench does."""
    photos = bench_stages.load_photos(PHOTOS)
    detect_s, boxes = bench_stages.time_detect(default_detector, photos, repeat=1)
    landmarks_s, faces = bench_stages.time_landmarks(landmarker, photos, boxes, repeat=1)
    return photos, faces, detect_s, landmarks_s


def test_stages_alone_time_the_real_models_and_keep_their_outputs(measured):
    photos, faces, detect_s, landmarks_s = measured
    assert detect_s > 0 and landmarks_s > 0
    assert faces.count >= 2  # group.jpg holds several faces
    assert all(len(points) == 68 for per_photo in faces.points for points in per_photo)
    crops = bench_stages.crops_of(photos, faces, range(len(photos)))
    assert crops.shape == (faces.count, 224, 224, 3)


def test_agegender_stage_times_crop_and_predict_per_worker_batch(measured, synthetic_deepface_home_shared):
    from faces.models.agegender import load_agegender

    photos, faces, _, _ = measured
    model = load_agegender(synthetic_deepface_home_shared / ".deepface" / "weights")
    stage = bench_stages.time_agegender_stage(model, photos, faces, images_per_call=8, repeat=1)
    assert stage["calls"] == 1 and stage["seconds"] == pytest.approx(stage["crop_s"] + stage["predict_s"])
    crops = bench_stages.crops_of(photos, faces, [0])[:2]
    one_by_one = bench_stages.time_predict_calls(model, crops, faces_per_call=1, repeat=1)
    assert one_by_one["seconds"] > 0 and one_by_one["cpu_s"] > 0
    same = bench_stages.output_difference(model, model, crops)
    assert same == {
        "faces": 2,
        "max_age_probability": 0.0,
        "max_gender_probability": 0.0,
        "max_age_years": 0.0,
        "gender_flips": 0,
    }


def test_one_hop_moves_a_real_landmarked_event_and_leaves_nothing_behind(
    measured, default_detector, landmarker, redis_client
):
    photos = measured[0]
    job = landmarked_job(photos[0], default_detector, landmarker)
    assert job["faces"] and len(job["faces"][0]["landmarks"] or []) == 68
    keys_before = set(redis_client.keys("*"))
    single = time_hops(redis_client, job, hops=20)
    batched = time_hops(redis_client, job, hops=10, batch=8, image=photos[0].data)
    assert single.event_bytes == len(events.encode(job)) and len(single.seconds) == 20
    assert batched.batch == 8 and batched.with_image_fetch and all(s > 0 for s in batched.seconds)
    # Only the stats counters the runtime's commit always bumps may remain (they expire).
    left = {k.decode() for k in set(redis_client.keys("*")) - keys_before}
    assert all(k.startswith("faces:stats:bench-") for k in left), left


def test_cold_timeline_reads_milestones_from_parent_and_worker_logs(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    t0 = 1_800_000_000.0

    def line(offset: float, **fields) -> str:
        from datetime import datetime, timezone

        stamp = datetime.fromtimestamp(t0 + offset, timezone.utc).isoformat().replace("+00:00", "Z")
        return json.dumps({**fields, "timestamp": stamp})

    (logs / "agegender-0.log").write_text(
        "TensorFlow chatter, not JSON\n"
        + "\n".join(
            [
                line(9.0, event="worker.ready", stage="agegender", load_s=8.0),
                line(15.0, event="entry.processed", stage="agegender"),
            ]
        )
    )
    (logs / "sink-0.log").write_text(
        line(1.0, event="worker.ready", stage="sink", load_s=0.5)
        + "\n"
        + line(15.5, event="entry.processed", stage="sink")
    )
    parent = line(0.5, event="workers.started")
    timeline = cold_timeline(parent, logs, t0, total_s=17.0)
    assert timeline["phases"] == pytest.approx(
        {"spawn_s": 0.5, "until_all_ready_s": 9.0, "compute_after_ready_s": 6.5, "stop_s": 1.5}
    )


def _figures(peer_cold_s: float, cold_s: float, warm_s: float, agegender_s: float, hop_ms: float) -> dict:
    """A bench result with only the fields the report reads."""

    def peer(seconds):
        return {"seconds": seconds, "images": 2, "faces": 4, "detected": 4}

    timeline = {
        "phases": {"spawn_s": 0.5, "until_all_ready_s": 5, "compute_after_ready_s": 4, "stop_s": 1},
        "marks": {"agegender.load_s": 4.0},
    }
    return {
        "images": 2,
        "weights": "synthetic",
        "precision": "bfloat16",
        "peer": {
            "shared": {
                "cold": peer(peer_cold_s),
                "warm": peer(peer_cold_s / 2),
                "interpreter_and_import_s": 3.0,
                "model_load_s": 5.0,
            }
        },
        "cold": {"shared": {"seconds": cold_s, "images": 2, "faces": 4, "timeline": timeline}},
        # The same run in float32, twice as slow: shown, never judged.
        "cold_float32": {"shared": {"seconds": 2 * cold_s, "images": 2, "faces": 4, "timeline": timeline}},
        "warm": {
            "seconds": warm_s,
            "images": 2,
            "faces": 4,
            "latency_p50_s": 1.0,
            "latency_max_s": 2.0,
            "in_pipeline_stage_s": {"agegender": agegender_s},
            "worker_cpu_s": {"detect-0": 0.3, "landmarks-0": 0.1, "agegender-0": 7.0, "sink-0": 0.1},
            "agegender_batches": [{"images": 2, "faces": 4, "seconds": agegender_s}],
        },
        "machine": {"cores": 2},
        "stages": {
            "images": 2,
            "faces": 4,
            "decode_s": 0.1,
            "detect_s": 0.2,
            "landmarks_s": 0.05,
            "agegender_s": agegender_s,
            "shared_trunk": True,
            "agegender": {"crop_s": 0.1, "predict_s": agegender_s - 0.1, "calls": 1, "images_per_call": 8},
        },
        "agegender_variants": {
            "faces": 4,
            "precisions": ["bfloat16", "float32"],
            "precision_difference": {
                "faces": 4,
                "max_age_probability": 0.001,
                "max_gender_probability": 0.002,
                "max_age_years": 0.05,
                "gender_flips": 0,
            },
            **{
                f"{precision}/{trunk}/{label}": {"seconds": 1.0, "cpu_s": 2.0}
                for precision in ("bfloat16", "float32")
                for trunk in ("shared", "two")
                for label in ("all", "16", "one")
            },
        },
        "transport": {
            "redis_version": "7.2",
            "hops": {
                "typical/single": {
                    "event_bytes": 3000,
                    "faces": 2,
                    "batch": 1,
                    "p50_ms": hop_ms,
                    "p99_ms": 2 * hop_ms,
                    "events_per_s": 1000 / hop_ms,
                }
            },
        },
    }


def test_targets_are_judged_on_ratios_measured_side_by_side():
    good = _figures(peer_cold_s=30, cold_s=10, warm_s=4.1, agegender_s=4.0, hop_ms=0.5)
    good["derived"] = bench_report.derive(good)
    assert good["derived"]["cold_speedup"]["shared weights, bfloat16"] == pytest.approx(3.0)
    assert good["derived"]["cold_speedup"]["shared weights, float32"] == pytest.approx(1.5)
    # Only `faces run` as it runs by default is judged: one cold target, not two.
    assert [t["name"] for t in good["derived"]["targets"]][
        0
    ] == "cold end to end vs DeepFace loop (shared trunk, bfloat16)"
    assert sum(t["name"].startswith("cold") for t in good["derived"]["targets"]) == 1
    assert good["derived"]["busiest_stage"] == "agegender"
    assert good["derived"]["overhead_pct"] == pytest.approx(100 * 0.1 / 4.1)
    # detect, landmarks and sink took 0.5 CPU seconds of the 2 cores during the 4.1 s batch.
    assert good["derived"]["overhead_floor_pct"] == pytest.approx(100 * 0.25 / 4.1)
    assert all(t["met"] for t in good["derived"]["targets"])

    bad = _figures(peer_cold_s=15, cold_s=10, warm_s=5.0, agegender_s=4.0, hop_ms=2.5)
    verdicts = {t["name"]: t["met"] for t in bench_report.derive(bad)["targets"]}
    assert not any(verdicts.values()), verdicts


def test_the_bundled_and_avx2_cold_runs_are_judged_against_their_own_loops():
    """Issue 16: cold `faces run` >= 10x the DeepFace loop with the bundled networks, and >= 3x
    as on an AVX2-only CPU, where the DeepFace loop is run again under the same cap. The bundled
    run is judged twice (issue 27), recognition off and on (the user's default), each on its
    own figure; the time to the first result is shown for every cold run."""
    figures = _figures(peer_cold_s=30, cold_s=10, warm_s=4.1, agegender_s=4.0, hop_ms=0.5)
    run = figures["cold"]["shared"]
    figures["cold_bundled"] = {**run, "seconds": 2.5}  # 30 / 2.5 = 12x
    first = {**run["timeline"], "first_result_s": 3.25}
    figures["cold_bundled_recognition"] = {**run, "seconds": 5.0, "timeline": first}  # 30 / 5 = 6x
    figures["avx2"] = {
        "peer": {**figures["peer"]["shared"], "cold": {**figures["peer"]["shared"]["cold"], "seconds": 50}},
        "cold": {**run, "seconds": 20},  # 50 / 20 = 2.5x, not the 30 of the other loop
        "precision": "opencv-float32",
    }
    targets = {t["name"]: t for t in bench_report.derive(figures)["targets"]}
    bundled = targets["cold end to end, bundled age/gender, recognition off, vs DeepFace loop (different age models)"]
    assert bundled["met"] and bundled["shown"] == "12.00x"
    on = targets[
        "cold end to end, bundled age/gender, recognition on, the default, vs DeepFace loop (different age models)"
    ]
    assert not on["met"] and on["shown"] == "6.00x"
    avx2 = targets["cold end to end vs DeepFace loop as on an AVX2-only CPU (shared trunk, capped at AVX2)"]
    assert not avx2["met"] and avx2["shown"] == "2.50x"
    figures["derived"] = bench_report.derive(figures)
    text = bench_report.render_markdown(figures)
    assert "| cold, s/image (shared weights, opencv-float32, as on an AVX2-only CPU) | 25.00 | 10.00 | 2.50x |" in text
    del figures["avx2"]["precision"]  # a run from before the engine was recorded: TensorFlow's float32
    figures["derived"] = bench_report.derive(figures)
    assert "(shared weights, float32, as on an AVX2-only CPU)" in bench_report.render_markdown(figures)
    assert f"| cold, s/image ({bench_report.BUNDLED_COLD}) | 15.00 | 1.25 | 12.00x |" in text
    assert f"| cold, s/image ({bench_report.BUNDLED_COLD_RECOGNITION}) | 15.00 | 2.50 | 6.00x |" in text
    assert f"| {bench_report.BUNDLED_COLD_RECOGNITION}: launch -> first result | 3.25 |" in text
    assert f"| {bench_report.BUNDLED_COLD}: launch -> first result | - |" in text  # not in its logs


def test_report_renders_the_same_sections_as_markdown():
    figures = _figures(peer_cold_s=30, cold_s=10, warm_s=4.1, agegender_s=4.0, hop_ms=0.5)
    figures["derived"] = bench_report.derive(figures)
    text = bench_report.render_markdown(figures)
    for section in bench_report.sections(figures):
        assert f"**{section.title}**" in text
    assert "| cold end to end vs DeepFace loop (shared trunk, bfloat16) | >= 3.0x | 3.00x | met |" in text
    assert "| cold, s/image (shared weights, float32) | 15.00 | 10.00 | 1.50x |" in text
    assert "| bfloat16, two full models, one face per call | 0.250 | 0.500 |" in text
    assert "0.0010 / 0.0020 | 0.05 years; 0 |" in text


def test_cpu_watch_separates_this_process_from_the_rest_of_the_machine():
    watch = CpuWatch()
    sum(i * i for i in range(200_000))
    report = watch.report()
    assert report["bench_cpu_s"] >= 0 and report["other_cpu_s"] >= 0
    assert set(report) == {"wall_s", "machine_cpu_s", "bench_cpu_s", "other_cpu_s", "other_load_cores"}


def test_the_command_refuses_a_missing_folder_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from bench.__main__ import app

    done = CliRunner().invoke(app, [str(tmp_path / "nowhere"), "--synthetic-weights"])
    assert done.exit_code == 1
    assert done.output.strip() == f"error: {tmp_path / 'nowhere'} is not a folder"


def _throughput(
    steady_ips: float,
    plain_ips: float,
    rates: tuple[float, float, float],
    per_image_b: tuple[float, float, float],
    rss_mb: tuple[float, float, float],
) -> dict:
    """A throughput part with only the fields its report reads: a floor of 0.5 CPU s/image on
    2 cores (4 images/s), one backend, three growth sizes, scale-out 1 and 2 detect workers."""
    steady = {
        "images": 1000,
        "counted_from": 101,
        "images_per_s": steady_ips,
        "latency_p50_s": 100.0,
        "latency_p99_s": 200.0,
        "cpu_s_per_image_total": 0.55,
        "counts": {"detect": 1, "landmarks": 1, "agegender": 1, "embed": 1, "sink": 1},
        "cpu_s_per_image": {
            "detect-0": 0.4,
            "landmarks-0": 0.05,
            "agegender-0": 0.05,
            "sink-0": 0.03,
            "redis-server": 0.011,
            "bench (submits)": 0.009,
        },
        "cpu_share_of_wall": {
            "detect-0": 0.99,
            "landmarks-0": 0.15,
            "agegender-0": 0.15,
            "sink-0": 0.1,
            "redis-server": 0.03,
            "bench (submits)": 0.02,
        },
    }
    growth = [
        {
            "queued": n,
            "images_per_s": r,
            "image_bytes": 8000 * n,
            "queue_b": (8000 + b) * n,
            "queue_beyond_images_b_per_image": b,
            "redis_done_b": 20000 * n,
            "workers_rss_mb": m,
            "workers_peak_mb": m + 10,
            "submit_s": n / 1000,
        }
        for n, r, b, m in zip((100, 1000, 10000), rates, per_image_b, rss_mb)
    ]
    return {
        "cores": 2,
        "cpu_kind": "AVX2 only",
        "floor": {
            "images": 15,
            "faces": 73,
            "cores": 2,
            "batch": 8,
            "step_cpu_s": {"decode": 0.01, "detect": 0.35, "landmarks": 0.02, "sink": 0.02},
            "backends": {"dlib": {"agegender_cpu_s": 0.1, "total_cpu_s": 0.5, "images_per_s": 4.0}},
        },
        "plain": {"dlib": {"images_per_s": plain_ips}},
        "steady": {"dlib": steady},
        "scale": {"1": steady, "2": {**steady, "images_per_s": steady_ips * 1.5}},
        "growth": growth,
    }


def test_throughput_targets_are_ratios_to_the_floor_and_the_plain_program_from_one_run():
    good = bench_report.derive_throughput(_throughput(3.8, 3.9, (3.0, 3.1, 3.05), (600, 650, 660), (650, 660, 665)))
    assert good["backends"]["dlib"]["of_floor"] == pytest.approx(3.8 / 4.0)
    assert good["backends"]["dlib"]["of_plain"] == pytest.approx(3.8 / 3.9)
    assert good["backends"]["dlib"]["busiest"] == "detect-0"
    assert good["backends"]["dlib"]["redis_cpu_share"] == pytest.approx(0.011 / 0.55)
    assert good["growth"]["per_image_change"] == pytest.approx(10 / 650)
    # Slope per 1,000 images, from the smallest size to the largest.
    assert good["growth"]["workers_rss_mb_per_1000"] == pytest.approx(15 / 9.9)
    assert good["scale"]["saturates_at"] == "2"
    assert good["floor_ips_16_cores"] == pytest.approx(32.0)  # an extrapolation: 16 / 0.5
    assert all(t["met"] for t in good["targets"]), good["targets"]

    bad = bench_report.derive_throughput(_throughput(2.9, 3.5, (80, 40, 30), (600, 650, 900), (650, 660, 800)))
    verdicts = {t["name"]: t["met"] for t in bad["targets"]}
    assert len(verdicts) == 5 and not any(verdicts.values()), verdicts


def test_throughput_alone_renders_its_tables_and_the_cpu_kind():
    figures: dict = {
        "only": "throughput",
        "machine": {"cpu_model": "test CPU", "load": {"other_load_cores": 0.0}},
        "throughput": _throughput(3.8, 3.9, (3.0, 3.1, 3.05), (600, 650, 660), (650, 660, 665)),
    }
    figures["derived"] = {"throughput": bench_report.derive_throughput(figures["throughput"])}
    figures["derived"]["targets"] = figures["derived"]["throughput"]["targets"]
    text = bench_report.render_markdown(figures)
    assert "| CPU kind | AVX2 only |" in text
    assert "| floor: 2 cores / sum, images/s | 4.00 |" in text
    assert "| steady state vs CPU floor (dlib, recognition off) | >= 90% | 95% (3.80 of 4.00 images/s) | met |" in text
    # The verdicts name the machine they hold for.
    assert "**Targets, on test CPU (kind not recorded), ? cores usable, other load meanwhile 0.00 cores**" in text
    assert "Side by side" not in text  # the DeepFace comparison did not run


def _with_recognition(part: dict, steady_ips: float) -> dict:
    """``part`` with the bundled setup run again with recognition on: the embed step adds 0.3 CPU
    s/image to the floor (0.8 s: 2.5 images/s on 2 cores); its plain program did 2.4 images/s."""
    name = "dlib+recognition"
    part["floor"]["embed_cpu_s"] = 0.3
    part["floor"]["backends"][name] = {
        "agegender_cpu_s": 0.1,
        "embed_cpu_s": 0.3,
        "total_cpu_s": 0.8,
        "images_per_s": 2.5,
        "recognition": True,
    }
    part["plain"][name] = {"images_per_s": 2.4}
    steady = part["steady"]["dlib"]
    part["steady"]["dlib"] = {**steady, "recognised_faces": 0}
    part["steady"][name] = {
        **steady,
        "images_per_s": steady_ips,
        "recognised_faces": 73,
        "cpu_s_per_image": {**steady["cpu_s_per_image"], "embed-0": 0.3},
    }
    return part


def test_recognition_on_is_judged_against_the_floor_with_the_embed_step():
    """Issue 24: with recognition on, the steady state is held to 90 % of a floor that includes
    the embed step, and shown beside a plain program that computes the descriptors too (not
    judged: no issue sets that target); with it off, issue 27's two targets as before."""
    part = _with_recognition(_throughput(3.8, 3.9, (3.0, 3.1, 3.05), (600, 650, 660), (650, 660, 665)), 2.3)
    derived = bench_report.derive_throughput(part)
    steady = {t["name"]: t for t in derived["targets"] if t["name"].startswith("steady")}
    assert list(steady) == [
        "steady state vs CPU floor (dlib, recognition off)",
        "steady state vs best plain program (dlib, recognition off)",
        "steady state vs CPU floor (dlib, recognition on)",
    ]
    on = steady["steady state vs CPU floor (dlib, recognition on)"]
    assert on["met"] and on["value"] == pytest.approx(2.3 / 2.5) and on["shown"] == "92% (2.30 of 2.50 images/s)"
    assert derived["backends"]["dlib+recognition"]["of_plain"] == pytest.approx(2.3 / 2.4)
    missed = bench_report.derive_throughput(_with_recognition(part, 2.2))["targets"]
    assert [t["met"] for t in missed if t["name"].endswith("recognition on)")] == [False]  # 88 %

    figures: dict = {"only": "throughput", "machine": {"cpu_model": "test CPU", "usable_cores": 2}, "throughput": part}
    figures["derived"] = {"throughput": derived, "targets": derived["targets"]}
    text = bench_report.render_markdown(figures)
    assert "| embed: chips + descriptors (recognition on) | - | 0.300 |" in text
    assert "| sum, CPU s/image | 0.500 | 0.800 |" in text
    assert "| best plain program (pool, 1 process/core), images/s | 3.90 | 2.40 |" in text
    assert "|   faces recognised (named or clustered) | 0 | 73 |" in text
    assert "|   CPU s/image: embed-0 | - | 0.300 |" in text


def test_every_stack_and_run_the_bench_starts_states_recognition():
    """The bench's stacks pass --recognition or --no-recognition to the embed worker, and its cold
    runs pass it to `faces run`: an option wins over FACES_RECOGNITION, so the environment the
    bench runs in cannot change what it measures. `--growth none` / `--scale none` skip those runs."""
    from bench.__main__ import _counts
    from bench.pipeline import recognition_flag, worker_args
    from faces.ops.settings import AppSettings

    app = AppSettings(redis_url=None, state_dir=DATA, storage=DATA / "s", output=DATA / "o")
    off, on = worker_args(app, visualize=False, recognition=False), worker_args(app, visualize=True, recognition=True)
    assert off["embed"] == ["--no-recognition"] and off["sink"] == ["--no-visualize"]
    assert on["embed"] == ["--recognition"] and on["sink"] == ["--output", str(DATA / "o")]
    assert [recognition_flag(False), recognition_flag(True)] == ["--no-recognition", "--recognition"]
    assert _counts("none") == () and _counts("100,1000") == (100, 1000)


def test_the_embed_step_describes_each_face_that_has_landmarks(default_detector, landmarker):
    """The floor's and the plain program's embed step (bench/embedding.py): one 128-d descriptor
    per face with landmarks, as the embed stage picks them; a face without them is skipped and
    the others' descriptors do not change."""
    from bench.embedding import describe_photos
    from faces.models.analysis import Photo, add_landmarks, decode_photo, find_faces
    from faces.models.embed import DESCRIPTOR_SIZE, load_embedder
    from faces.producer.files import job_for

    data = PHOTOS[0].read_bytes()
    photo = decode_photo(job_for(str(PHOTOS[0]), data), data, "detect")
    assert isinstance(photo, Photo)
    find_faces(default_detector, [photo])
    add_landmarks(landmarker, [photo])
    faces = len(photo.job["faces"])
    embedder = load_embedder()
    every = describe_photos(embedder, [photo])
    assert faces >= 2 and every.shape == (faces, DESCRIPTOR_SIZE)
    photo.job["faces"][0]["landmarks"] = None
    rest = describe_photos(embedder, [photo])
    assert rest.shape == (faces - 1, DESCRIPTOR_SIZE)
    assert rest == pytest.approx(every[1:], abs=1e-5)


def test_cpu_kind_reads_the_flags():
    from bench.machine import cpu_kind

    assert cpu_kind("fpu avx2 avx512f avx512_bf16") == "AVX-512 with bfloat16"
    # AMX's bfloat16 alone counts too, as it does for `auto` (models.precision)
    assert cpu_kind("fpu avx2 avx512f amx_bf16") == "AVX-512 with bfloat16"
    assert cpu_kind("fpu avx2 avx512f") == "AVX-512 without bfloat16"
    assert cpu_kind("fpu sse4_2 avx avx2 fma") == "AVX2 only"


@pytest.mark.long  # real pipelines and plain programs side by side: a minute and more
def test_throughput_part_runs_for_real_on_a_few_images(tmp_path, monkeypatch):
    """The whole throughput part, tiny: bundled age/gender only, data/'s 3 photos, 12 images
    through a real stack with recognition off and 12 with it on, 10 queued small images. Every
    figure the report reads is there. The environment says recognition on: the runs that must
    not recognise (steady state off, growth) still do not, as each stack is told by option."""
    from bench.machine import usable_cores
    from bench.throughput import ThroughputOptions, run_throughput
    from faces.ops.supervise.counts import auto_counts

    # The steady run has the detect workers `faces up` starts here: that scale-out row is that run.
    detect = auto_counts(usable_cores())["detect"]
    monkeypatch.setenv("FACES_RECOGNITION", "on")
    options = ThroughputOptions(
        steady_images=12,
        deepface_images=0,
        recognition_images=12,
        plain_images=4,
        growth=(10,),
        growth_window=25,
        growth_windows=2,
        scale=(detect,),
    )
    part = run_throughput(DATA, None, options)
    assert part["steady"]["dlib"]["images"] == 12 and part["steady"]["dlib"]["faces"] > 0
    assert part["steady"]["dlib"]["cpu_s_per_image"]["redis-server"] > 0
    assert part["plain"]["dlib"]["images"] == 4 and part["floor"]["backends"]["dlib"]["images_per_s"] > 0
    assert part["growth"][0]["queued"] == 10 and part["growth"][0]["queue_b"] > part["growth"][0]["image_bytes"]
    # The first 2 x 25 results were replaced as they came (10 stayed queued), then the 10
    # drained; the rate is the median of the two windows' (the first after its first tenth).
    growth = part["growth"][0]
    assert growth["results"] == 60 and growth["counted_images"] == 22 + 24 and len(growth["window_rates"]) == 2
    assert growth["images_per_s"] == pytest.approx(sum(growth["window_rates"]) / 2)
    # The steady run is that scale-out row when the other stages had one worker each (2 cores).
    one_each = all(n == 1 for stage, n in auto_counts(usable_cores()).items() if stage != "detect")
    assert part["scale"][str(detect)].get("from_steady_run", False) == one_each
    assert part["steady"]["dlib"]["counts"] == auto_counts(usable_cores())
    # Recognition on: the embed stage described and judged every face, and its worker did the
    # work; off (whatever the environment said), no face was recognised.
    on, off = part["steady"]["dlib+recognition"], part["steady"]["dlib"]
    assert on["images"] == 12 and on["recognised_faces"] == on["faces"] > 0
    assert off["recognised_faces"] == 0 and off["recognition"] is False and on["recognition"] is True
    assert on["cpu_s_per_image"]["embed-0"] > 10 * off["cpu_s_per_image"]["embed-0"]
    assert part["plain"]["dlib+recognition"]["recognition"] and part["plain"]["dlib+recognition"]["images"] == 4
    floor = part["floor"]["backends"]
    assert floor["dlib+recognition"]["total_cpu_s"] == pytest.approx(
        floor["dlib"]["total_cpu_s"] + part["floor"]["embed_cpu_s"]
    )
    derived = bench_report.derive_throughput(part)
    assert {t["name"] for t in derived["targets"]} == {
        "steady state vs CPU floor (dlib, recognition off)",
        "steady state vs best plain program (dlib, recognition off)",
        "steady state vs CPU floor (dlib, recognition on)",
    }


def test_the_avx2_emulation_really_caps_opencv():
    """OpenCV ignores (and only warns about) a feature name it does not know: the emulation's
    names must be OpenCV's own, or its AVX-512 code paths stay on."""
    import os
    import subprocess
    import sys

    from bench.machine import AVX2_EMULATION

    env = {**os.environ, **AVX2_EMULATION}
    done = subprocess.run(
        [sys.executable, "-c", "import cv2; print(cv2.getCPUFeaturesLine())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "unknown CPU feature" not in done.stderr, done.stderr
    features = done.stdout.split()
    # Where this CPU has AVX-512, it is listed as disabled ("?"), not as in use.
    assert not [f for f in features if f.startswith("*AVX512") and not f.endswith("?")], features
