"""Who a face is, from its descriptor (models/embed.py): an exact search over stored
descriptors, and the decision rules every caller keeps.

The rules (docs/models.md "Recognition" says how the thresholds were chosen):
- a face is named after the enrolled person whose nearest reference descriptor is closest, when
  that distance is below MATCH_THRESHOLD;
- a face no enrolled person claims joins the unnamed cluster of its nearest stored face when
  that is below CLUSTER_THRESHOLD (stricter: a cluster grows face by face, and one wrong step
  would merge two people), otherwise it starts a cluster of its own;
- two faces of one photo are never the same person or cluster: the closest pair wins and the
  other face takes its next candidate;
- a person or cluster a face was marked "not" is never its candidate again.
Nothing here touches Redis: streams/gallery.py keeps what these functions read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from faces.models.embed import DESCRIPTOR_DTYPE, DESCRIPTOR_SIZE

# Chosen on the hand-labelled faces of bench/identities.json (docs/models.md "Recognition";
# `python -m bench.recognition` prints the figures). MATCH: with three reference photos per person
# 96.7 % of four actors' other photos are named right (two photos: 90.4 %), none wrongly, and none
# of 43 strangers is named; but 5 of 2,286 pairs of different people are nearer than 0.5 (0 below
# 0.45; 39 below 0.6, the network author's threshold, which would name strangers).
# CLUSTER is stricter: a cluster grows face by face, one wrong step merges two people, which users
# cannot easily undo, while a split cluster is one merge away (0 merges, 8.7 clusters for 4 actors).
MATCH_THRESHOLD = 0.50
CLUSTER_THRESHOLD = 0.45
# Rows marked removed are dropped from the matrix once they are this share of it.
COMPACT_SHARE = 0.25
# nearest_rows narrows a large matrix to the rows at least as near as the count-th best of the
# per-block bests before it partitions (a partition of 1M scores alone costs ~17 ms here).
TOP_BLOCK = 1024


@dataclass(frozen=True)
class Candidate:
    """A person (or cluster) a face could be, at `distance` from its nearest descriptor."""

    label: str
    distance: float


class Descriptors:
    """Descriptors in one matrix for exact search, each row with a group (what it came from: an
    image id, an enrolment photo) and a label (the person or cluster it belongs to). A group is
    replaced or removed as a whole."""

    def __init__(self) -> None:
        # Rows [0, _used) of the buffers are filled; the buffers grow by doubling, so adding a
        # photo's faces costs its own rows, not a copy of the whole matrix. A query reads the
        # whole matrix once (at 1M faces, 512 MB: memory bandwidth is the cost), so everything
        # else per row is kept to one 4-byte number: half the squared norm, +inf for a removed
        # row, which then scores -inf and is never near (no mask to apply per query).
        self._matrix = np.zeros((0, DESCRIPTOR_SIZE), dtype=DESCRIPTOR_DTYPE)
        self._halves = np.zeros(0, dtype=DESCRIPTOR_DTYPE)
        self._alive = np.zeros(0, dtype=bool)
        self._used = 0
        self._live = 0
        self._labels: list[str] = []
        self._groups: list[str] = []
        self._positions: list[int] = []  # each row's place in its group (a face's index in its photo)
        self._rows_of: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return self._live

    def groups(self) -> Iterable[str]:
        return self._rows_of.keys()

    def replace(
        self, group: str, vectors: np.ndarray, labels: Sequence[str], positions: Sequence[int] | None = None
    ) -> None:
        """The rows of `group` become `vectors` with `labels`, at `positions` within the group
        (0, 1, ... unless given); no vectors: the group is removed."""
        self.remove(group)
        vectors = np.asarray(vectors, dtype=DESCRIPTOR_DTYPE).reshape(-1, DESCRIPTOR_SIZE)
        if len(vectors) == 0:
            return
        start, end = self._used, self._used + len(vectors)
        if end > len(self._matrix):
            self._grow(max(end, 2 * len(self._matrix), 1024))
        self._matrix[start:end] = vectors
        self._halves[start:end] = 0.5 * np.einsum("ij,ij->i", vectors, vectors)
        self._alive[start:end] = True
        self._used = end
        self._live += len(vectors)
        self._labels.extend(labels)
        self._groups.extend([group] * len(vectors))
        self._positions.extend(range(len(vectors)) if positions is None else positions)
        self._rows_of[group] = list(range(start, end))

    def _grow(self, capacity: int) -> None:
        matrix = np.zeros((capacity, DESCRIPTOR_SIZE), dtype=DESCRIPTOR_DTYPE)
        halves = np.zeros(capacity, dtype=DESCRIPTOR_DTYPE)
        alive = np.zeros(capacity, dtype=bool)
        matrix[: self._used], halves[: self._used], alive[: self._used] = (
            self._matrix[: self._used],
            self._halves[: self._used],
            self._alive[: self._used],
        )
        self._matrix, self._halves, self._alive = matrix, halves, alive

    def remove(self, group: str) -> None:
        rows = self._rows_of.pop(group, None)
        if rows:
            self._alive[rows] = False
            self._halves[rows] = np.inf
            self._live -= len(rows)
            if self._used - len(self) > COMPACT_SHARE * self._used:
                self._compact()

    def relabel(self, old: str, new: str) -> None:
        """Every row labelled `old` is labelled `new` (a merge)."""
        self._labels = [new if label == old else label for label in self._labels]

    def candidates(
        self, query: np.ndarray, below: float, *, skip_group: str | None = None, limit: int = 8
    ) -> list[Candidate]:
        """Per label, the distance from `query` to its nearest row, for labels nearer than
        `below`, nearest first (at most `limit`); rows of `skip_group` are left out."""
        if not self._used:
            return []
        scores, query_squared = self._scores(query)
        near = self._nearer_than(scores, query_squared, below)
        if skip_group is not None:
            near = near[[self._groups[row] != skip_group for row in near]]
        best: dict[str, float] = {}
        for row in near:
            label = self._labels[row]
            if label not in best:
                best[label] = _distance(query_squared, scores[row])
                if len(best) == limit:
                    break
        return [Candidate(label, distance) for label, distance in best.items()]

    def nearest_rows(self, query: np.ndarray, count: int) -> list[tuple[str, int, str, float]]:
        """The `count` nearest rows: (group, position within its group, label, distance)."""
        if not len(self) or count < 1:
            return []
        scores, query_squared = self._scores(query)
        return [self._row(row, query_squared, scores) for row in _top(scores, min(count, len(self)))]

    def within(self, query: np.ndarray, below: float) -> list[tuple[str, int, str, float]]:
        """Every row nearer than `below`, nearest first: (group, position, label, distance)."""
        if not self._used:
            return []
        scores, query_squared = self._scores(query)
        return [self._row(row, query_squared, scores) for row in self._nearer_than(scores, query_squared, below)]

    def _row(self, row: int, query_squared: float, scores: np.ndarray) -> tuple[str, int, str, float]:
        return self._groups[row], self._positions[row], self._labels[row], _distance(query_squared, scores[row])

    def rows_labelled(self, label: str) -> list[tuple[str, int]]:
        """(group, position) of every live row labelled `label`."""
        return [
            (self._groups[r], self._positions[r])
            for r, row_label in enumerate(self._labels)
            if row_label == label and self._alive[r]
        ]

    def label_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r, label in enumerate(self._labels):
            if self._alive[r]:
                counts[label] = counts.get(label, 0) + 1
        return counts

    def _scores(self, query: np.ndarray) -> tuple[np.ndarray, float]:
        """Per filled row x, the score x.q - |x|^2/2, and |q|^2: |x - q|^2 = |q|^2 - 2 score, so
        the higher the score the nearer the row (a removed row scores -inf). One matrix-vector
        product and one subtraction in place: no other pass over a million rows."""
        query = np.asarray(query, dtype=DESCRIPTOR_DTYPE)
        scores = self._matrix[: self._used] @ query
        scores -= self._halves[: self._used]
        return scores, float(query @ query)

    @staticmethod
    def _nearer_than(scores: np.ndarray, query_squared: float, below: float) -> np.ndarray:
        """The rows nearer than `below`, nearest first."""
        near = np.flatnonzero(scores > 0.5 * (query_squared - below * below))
        return near[np.argsort(-scores[near], kind="stable")]

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._used])
        self._matrix = self._matrix[keep]
        self._halves = self._halves[keep]
        self._alive = np.ones(len(keep), dtype=bool)
        self._used = len(keep)
        self._labels = [self._labels[row] for row in keep]
        self._groups = [self._groups[row] for row in keep]
        self._positions = [self._positions[row] for row in keep]
        self._rows_of = {}
        for row, group in enumerate(self._groups):
            self._rows_of.setdefault(group, []).append(row)


def _distance(query_squared: float, score: float) -> float:
    return float(np.sqrt(max(query_squared - 2.0 * float(score), 0.0)))


def _top(scores: np.ndarray, count: int) -> np.ndarray:
    """The rows of the `count` highest scores, highest first. On a large matrix, first the rows
    scoring at least the count-th highest of the per-block maxima (at least `count` rows do: the
    count best blocks have one each), which leaves a handful to partition."""
    rows = np.arange(len(scores))
    blocks = len(scores) // TOP_BLOCK
    if blocks > count:
        maxima = scores[: blocks * TOP_BLOCK].reshape(blocks, TOP_BLOCK).max(axis=1)
        rows = np.flatnonzero(scores >= np.partition(maxima, blocks - count)[blocks - count])
    if len(rows) > count:
        rows = rows[np.argpartition(-scores[rows], count - 1)[:count]]
    return rows[np.argsort(-scores[rows], kind="stable")]


def assign(candidates: Sequence[Sequence[Candidate]], refused: Sequence[set[str]] = ()) -> list[Candidate | None]:
    """One label per face of a photo, or None: each face's `candidates` (nearest first) less the
    labels it was marked "not" (`refused`, per face), and no label given to two faces; pairs
    are taken nearest first, so the face nearest a label keeps it."""
    pairs = sorted(
        (candidate.distance, face, candidate)
        for face, options in enumerate(candidates)
        for candidate in options
        if not (face < len(refused) and candidate.label in refused[face])
    )
    chosen: list[Candidate | None] = [None] * len(candidates)
    taken: set[str] = set()
    for _distance, face, candidate in pairs:
        if chosen[face] is None and candidate.label not in taken:
            chosen[face] = candidate
            taken.add(candidate.label)
    return chosen
