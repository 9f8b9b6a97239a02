"""The throughput part's judged figures and tables (bench/throughput.py's figures in, ratios,
slopes, target verdicts and small tables out). bench/report.py shows them with the rest.

Which targets judge which setup: with recognition off, issue 27's, the steady state against the
CPU floor (>= 90 %) and against the plain program (>= 0.95x); with recognition on, issue 24's,
against the CPU floor with the embed step (>= 90 %). The plain program with recognition on is
shown beside it, not judged: no issue sets a target for it."""

from __future__ import annotations

from bench.floor import RECOGNITION
from bench.report import Section, _n, _target
from faces.ops.supervise.counts import describe

MIN_OF_FLOOR = 0.90  # pipeline steady state vs the CPU floor
MIN_OF_PLAIN = 0.95  # pipeline steady state vs the best plain program
MAX_MEMORY_CHANGE = 0.10  # 1,000 -> 10,000 queued, beyond the images' own bytes
MAX_RATE_SPREAD = 0.10  # images/s across the growth sizes
EXTRAPOLATE_CORES = 16
SATURATED_GAIN = 0.10  # scale-out: more workers adding less than this is saturation


def derive_throughput(t: dict) -> dict:
    """Ratios to the floor and the plain program, growth slopes, scale-out, and the verdicts."""
    d: dict = {"backends": {}, "targets": []}
    for name, floor in t["floor"]["backends"].items():
        steady, plain = t["steady"].get(name), t["plain"].get(name)
        if steady is None:
            continue
        cpu = steady["cpu_s_per_image"]
        total_cpu = steady["cpu_s_per_image_total"]
        busiest = max(
            (k for k in steady["cpu_share_of_wall"] if k != "bench (submits)"), key=steady["cpu_share_of_wall"].get
        )
        row = {
            "floor_ips": floor["images_per_s"],
            "steady_ips": steady["images_per_s"],
            "of_floor": steady["images_per_s"] / floor["images_per_s"],
            "plain_ips": plain["images_per_s"] if plain else None,
            "of_plain": steady["images_per_s"] / plain["images_per_s"] if plain else None,
            "pipeline_cpu_s": total_cpu,
            "floor_cpu_s": floor["total_cpu_s"],
            "cpu_over_floor": total_cpu / floor["total_cpu_s"],
            "redis_cpu_share": cpu.get("redis-server", 0.0) / total_cpu if total_cpu else 0.0,
            "busiest": busiest,
            "busiest_share": steady["cpu_share_of_wall"][busiest],
            "cores_used": sum(steady["cpu_share_of_wall"].values()),
        }
        d["backends"][name] = row
        recognition = bool(floor.get("recognition"))
        setup = f"{name.removesuffix(RECOGNITION)}, recognition {'on' if recognition else 'off'}"
        d["targets"].append(
            _target(
                f"steady state vs CPU floor ({setup})",
                row["of_floor"],
                f">= {MIN_OF_FLOOR:.0%}",
                row["of_floor"] >= MIN_OF_FLOOR,
                f"{row['of_floor']:.0%} ({_n(row['steady_ips'])} of {_n(row['floor_ips'])} images/s)",
            )
        )
        if plain and not recognition:
            d["targets"].append(
                _target(
                    f"steady state vs best plain program ({setup})",
                    row["of_plain"],
                    f">= {MIN_OF_PLAIN:.0%}",
                    row["of_plain"] >= MIN_OF_PLAIN,
                    f"{row['of_plain']:.0%} ({_n(row['steady_ips'])} of {_n(row['plain_ips'])} images/s)",
                )
            )
    d["growth"] = _growth(t.get("growth") or [], d["targets"])
    d["scale"] = _scale(t["scale"]) if t.get("scale") else {}
    bundled = t["floor"]["backends"].get("dlib")
    if bundled:
        # An extrapolation, not a measurement: the same CPU per image on more cores of this kind.
        d["floor_ips_16_cores"] = EXTRAPOLATE_CORES / bundled["total_cpu_s"]
    return d


def _results(run: dict) -> int:
    """Results a growth size ran to (runs before the window existed: their queue)."""
    return run.get("results", run["queued"])


def _per_1000(change: float, count: int) -> float:
    return change * 1000 / count if count else float("nan")


def _growth(runs: list[dict], targets: list[dict]) -> dict:
    runs = sorted(runs, key=lambda r: r["queued"])
    if len(runs) < 2:
        return {}
    small, large = runs[0], runs[-1]
    per_k = 1000 / (large["queued"] - small["queued"])
    g = {
        "ips_per_1000": (large["images_per_s"] - small["images_per_s"]) * per_k,
        "redis_queue_beyond_images_b_per_1000": (
            (large["queue_b"] - large["image_bytes"]) - (small["queue_b"] - small["image_bytes"])
        )
        * per_k,
        # Redis keeps every result: per 1,000 results, as a small queue is topped up (bench/growth.py).
        "redis_done_b_per_1000": _per_1000(
            large["redis_done_b"] - small["redis_done_b"], _results(large) - _results(small)
        ),
        "workers_rss_mb_per_1000": (large["workers_rss_mb"] - small["workers_rss_mb"]) * per_k,
    }
    rates = [r["images_per_s"] for r in runs]
    g["rate_spread"] = (max(rates) - min(rates)) / max(rates)
    before, after = runs[-2], runs[-1]
    g["per_image_change"] = _change(before["queue_beyond_images_b_per_image"], after["queue_beyond_images_b_per_image"])
    g["workers_rss_change"] = _change(before["workers_rss_mb"], after["workers_rss_mb"])
    span = f"{before['queued']:,} -> {after['queued']:,} queued"
    targets.append(
        _target(
            f"Redis memory per queued image beyond its bytes, {span}",
            g["per_image_change"],
            f"within {MAX_MEMORY_CHANGE:.0%}",
            abs(g["per_image_change"]) <= MAX_MEMORY_CHANGE,
            f"{before['queue_beyond_images_b_per_image']:.0f} -> "
            f"{after['queue_beyond_images_b_per_image']:.0f} B ({g['per_image_change']:+.1%})",
        )
    )
    targets.append(
        _target(
            f"workers' resident memory, {span}",
            g["workers_rss_change"],
            f"within {MAX_MEMORY_CHANGE:.0%}",
            abs(g["workers_rss_change"]) <= MAX_MEMORY_CHANGE,
            f"{before['workers_rss_mb']:.0f} -> {after['workers_rss_mb']:.0f} MB ({g['workers_rss_change']:+.1%})",
        )
    )
    sizes = "/".join(f"{r['queued']:,}" for r in runs)
    targets.append(
        _target(
            f"images/s across {sizes} queued",
            g["rate_spread"],
            f"within {MAX_RATE_SPREAD:.0%}",
            g["rate_spread"] <= MAX_RATE_SPREAD,
            f"{' / '.join(_n(r) for r in rates)} (spread {g['rate_spread']:.0%})",
        )
    )
    return g


def _change(before: float, after: float) -> float:
    return (after - before) / before if before else float("inf")


def _scale(runs: dict) -> dict:
    """Images/s per detect-worker count, and the count past which more add under SATURATED_GAIN."""
    counts = sorted(runs, key=int)
    rates = {c: runs[c]["images_per_s"] for c in counts}
    saturates = counts[-1]
    for before, after in zip(counts, counts[1:]):
        if rates[after] < rates[before] * (1 + SATURATED_GAIN):
            saturates = before
            break
    return {"images_per_s": rates, "saturates_at": saturates}


def throughput_sections(f: dict) -> list[Section]:
    t, d = f["throughput"], f["derived"]["throughput"]
    machine = f.get("machine") or {}
    out = [
        Section(
            "Throughput: the machine",
            ("fact", "value"),
            [
                ("CPU kind", t["cpu_kind"]),
                ("CPU model", str(machine.get("cpu_model"))),
                ("cores usable (affinity)", str(t["cores"])),
                ("other load during the run, cores", _n((machine.get("load") or {}).get("other_load_cores"))),
            ],
        )
    ]
    floor = t["floor"]
    names = list(floor["backends"])
    rows = [(step, *[_n(floor["step_cpu_s"][step], 3)] * len(names)) for step in ("decode", "detect", "landmarks")]
    rows.append(("age/gender", *[_n(floor["backends"][n]["agegender_cpu_s"], 3) for n in names]))
    rows.append(("sink: result JSON + annotated picture", *[_n(floor["step_cpu_s"]["sink"], 3)] * len(names)))
    if floor.get("embed_cpu_s") is not None:
        rows.append(
            (
                "embed: chips + descriptors (recognition on)",
                *[_n(floor["backends"][n].get("embed_cpu_s"), 3) for n in names],
            )
        )
    rows.append(("sum, CPU s/image", *[_n(floor["backends"][n]["total_cpu_s"], 3) for n in names]))
    rows.append(
        (f"floor: {t['cores']} cores / sum, images/s", *[_n(floor["backends"][n]["images_per_s"]) for n in names])
    )
    out.append(
        Section(
            f"CPU floor: each step's CPU s/image, in one process ({floor['images']} photos, "
            f"{floor['faces']} faces, age/gender in groups of {floor['batch']})",
            ("step", *names),
            rows,
        )
    )
    names = list(d["backends"])
    if names:
        b = d["backends"]
        steady = t["steady"]
        rows = [
            ("CPU floor, images/s", *[_n(b[n]["floor_ips"]) for n in names]),
            ("best plain program (pool, 1 process/core), images/s", *[_n(b[n]["plain_ips"]) for n in names]),
            ("pipeline steady state, images/s", *[_n(b[n]["steady_ips"]) for n in names]),
            (
                "  of the floor / of the plain program",
                *[
                    f"{b[n]['of_floor']:.0%} / {'-' if b[n]['of_plain'] is None else format(b[n]['of_plain'], '.0%')}"
                    for n in names
                ],
            ),
            ("  workers per stage (--workers auto)", *[describe(steady[n]["counts"]) for n in names]),
            ("  faces recognised (named or clustered)", *[str(steady[n].get("recognised_faces", "-")) for n in names]),
            (
                "  images fed (counted from result #)",
                *[f"{steady[n]['images']} ({steady[n]['counted_from']})" for n in names],
            ),
            (
                "  latency p50 / p99, s (all submitted at once)",
                *[f"{_n(steady[n]['latency_p50_s'])} / {_n(steady[n]['latency_p99_s'])}" for n in names],
            ),
            (
                "  CPU s/image, every process / floor",
                *[f"{_n(b[n]['pipeline_cpu_s'], 3)} / {_n(b[n]['floor_cpu_s'], 3)}" for n in names],
            ),
            ("  cores kept busy (all processes)", *[_n(b[n]["cores_used"]) for n in names]),
            (
                "  busiest process: share of one core",
                *[f"{b[n]['busiest']} {b[n]['busiest_share']:.0%}" for n in names],
            ),
            ("  redis-server: share of the CPU", *[f"{b[n]['redis_cpu_share']:.1%}" for n in names]),
        ]
        for proc in dict.fromkeys(p for n in names for p in steady[n]["cpu_s_per_image"]):
            rows.append((f"  CPU s/image: {proc}", *[_n(steady[n]["cpu_s_per_image"].get(proc), 3) for n in names]))
        out.append(
            Section(
                "Throughput near the machine's limit, per setup (age/gender backend; "
                f"{RECOGNITION}: recognition on, the plain program computing each face's descriptor too)",
                ("figure", *names),
                rows,
            )
        )
    scale = t.get("scale") or {}
    if scale:
        rows = []
        for count, run in sorted(scale.items(), key=lambda kv: int(kv[0])):
            share = run["cpu_share_of_wall"]
            detect = sum(v for k, v in share.items() if k.startswith("detect"))
            rows.append(
                (
                    count,
                    str(run["images"]),
                    _n(run["images_per_s"]),
                    _n(detect),
                    _n(sum(share.values())),
                    f"{_n(run['latency_p50_s'])} / {_n(run['latency_p99_s'])}",
                )
            )
        note = f"saturates at {d['scale']['saturates_at']} detect worker(s)"
        if "floor_ips_16_cores" in d:
            note += f"; 16 cores, extrapolated from the bundled floor: about {d['floor_ips_16_cores']:.0f} images/s"
        out.append(
            Section(
                f"Scale-out on this machine (bundled age/gender; one worker of each other stage): {note}",
                ("detect workers", "images", "images/s", "detect cores busy", "all cores busy", "latency p50 / p99, s"),
                rows,
            )
        )
    growth = sorted(t.get("growth") or [], key=lambda r: r["queued"])
    if growth:
        rows = [
            (
                f"{r['queued']:,}",
                f"{_results(r):,}",
                _n(r["images_per_s"]),
                f"{r['image_bytes'] / r['queued']:.0f}",
                f"{r['queue_beyond_images_b_per_image']:.0f}",
                f"{r['queue_b'] / 1e6:.1f}",
                f"{r['redis_done_b'] / 1e6:.1f}",
                f"{r['workers_rss_mb']:.0f} ({r['workers_peak_mb']:.0f})",
                f"{r['submit_s']:.1f}",
            )
            for r in growth
        ]
        g = d["growth"]
        if g:
            rows.append(
                (
                    "slope per 1,000 images",
                    "",
                    f"{g['ips_per_1000']:+.2f}",
                    "",
                    f"{g['redis_queue_beyond_images_b_per_1000'] / 1e3:+.1f} kB",
                    "",
                    f"{g['redis_done_b_per_1000'] / 1e6:+.2f}",
                    f"{g['workers_rss_mb_per_1000']:+.1f}",
                    "",
                )
            )
        out.append(
            Section(
                "Growth: small images (160x160, one face) queued, then consumed (bundled age/gender; "
                "images/s over a window of results each replaced at once, so the queue kept its size)",
                (
                    "queued",
                    "results",
                    "images/s",
                    "image B",
                    "Redis B/image beyond image",
                    "Redis queue MB",
                    "Redis after, MB",
                    "workers RSS (peak) MB",
                    "submit s",
                ),
                rows,
            )
        )
    return out
