"""Issue 24 item 7: exact search (models/identify.py) stays exact after its speed-ups (scores with
half norms, removed rows scoring -inf, top rows narrowed by block maxima): every query answers
what a brute-force Euclidean scan over the live rows answers."""

from __future__ import annotations

import numpy as np

from faces.models.identify import TOP_BLOCK, Descriptors


def brute_nearest(vectors: np.ndarray, live: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Live row numbers by increasing distance, and those distances (float64)."""
    distances = np.linalg.norm(vectors.astype(np.float64) - query.astype(np.float64), axis=1)
    rows = np.flatnonzero(live)
    order = rows[np.argsort(distances[rows], kind="stable")]
    return order, distances[order]


def test_exact_search_matches_a_brute_force_scan_with_removed_rows_and_the_block_shortcut():
    """Over 20 queries on 3 * TOP_BLOCK * 8 rows in groups of 3, a third of the groups removed
    (so whole blocks are dead and score -inf, and the matrix is compacted): nearest_rows(5) and nearest_rows(count > live)
    give the brute-force nearest live rows and distances; within and candidates give exactly the
    live rows nearer than the threshold, nearest first, one candidate per label, the skipped
    group absent; len counts live rows only."""
    rng = np.random.default_rng(24)
    total = 3 * TOP_BLOCK * 8
    vectors = (0.09 + 0.05 * rng.standard_normal((total, 128))).astype(np.float32)
    index = Descriptors()
    for start in range(0, total, 3):
        index.replace(f"g{start // 3}", vectors[start : start + 3], [f"l{start // 30}"] * 3)
    live = np.ones(total, dtype=bool)
    # Remove the groups of the first two blocks whole (block maxima -inf), then every third group.
    removed = set(range(2 * TOP_BLOCK // 3 + 1)) | set(range(0, total // 3, 3))
    for group in removed:
        index.remove(f"g{group}")
        live[3 * group : 3 * group + 3] = False
    assert len(index) == int(live.sum())

    for query in vectors[rng.choice(np.flatnonzero(live), 20, replace=False)] + 0.01:
        order, distances = brute_nearest(vectors, live, query)
        found = index.nearest_rows(query, 5)
        assert [(f"g{r // 3}", r % 3) for r in order[:5]] == [(g, p) for g, p, _l, _d in found]
        assert np.allclose([d for *_x, d in found], distances[:5], atol=1e-5)

        below = float(distances[39] + distances[40]) / 2  # 40 rows nearer than the threshold
        within = index.within(query, below)
        assert [(f"g{r // 3}", r % 3) for r in order[:40]] == [(g, p) for g, p, _l, _d in within]

        skipped = f"g{order[0] // 3}"
        expected: dict[str, float] = {}
        for row, distance in zip(order[:40], distances[:40]):
            if f"g{row // 3}" != skipped:
                expected.setdefault(f"l{row // 30}", float(distance))
        got = index.candidates(query, below, skip_group=skipped, limit=100)
        assert [c.label for c in got] == list(expected)
        assert np.allclose([c.distance for c in got], list(expected.values()), atol=1e-5)

    small = Descriptors()
    small.replace("a", vectors[:2], ["x", "y"])
    small.remove("a")
    small.replace("b", vectors[2:4], ["x", "y"])
    assert [(g, p) for g, p, _l, _d in small.nearest_rows(vectors[3], 10)] == [("b", 1), ("b", 0)]
    assert len(small) == 2
