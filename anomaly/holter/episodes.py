"""Episodes: stretches of a recording with one rhythm, as a Holter reader lists them, and
how a list of them agrees with a reference list by duration (the way AF burden is judged:
the share of the reference's time found, and the share of the time found that is right).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..recordings.times import format_time


@dataclass(frozen=True)
class Episode:
    """One stretch of a rhythm: ``kind`` (``"atrial fibrillation"``, ...), from ``start_s``
    to ``end_s`` seconds from the start of the recording."""

    kind: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def __str__(self) -> str:
        return (f"{self.kind} {format_time(self.start_s)}-{format_time(self.end_s)} "
                f"({format_time(self.duration_s)})")


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """The runs of true values of a boolean array, as ``(first, stop)`` index pairs."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(flags, dtype=np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def total_seconds(episodes: Iterable[Episode]) -> float:
    """The time the episodes cover, overlaps counted once."""
    return _length(_union(episodes))


def overlap_seconds(found: Iterable[Episode], reference: Iterable[Episode]) -> float:
    """The time covered both by an episode of ``found`` and one of ``reference``."""
    first, second = _union(found), _union(reference)
    shared, i, j = 0.0, 0, 0
    while i < len(first) and j < len(second):
        start, end = max(first[i][0], second[j][0]), min(first[i][1], second[j][1])
        shared += max(0.0, end - start)
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return shared


@dataclass(frozen=True)
class DurationAgreement:
    """How found episodes agree with reference ones by duration, in seconds: ``found``,
    ``reference`` and ``both`` (the overlap); sensitivity is ``both / reference`` and
    positive predictivity ``both / found`` (NaN when there is nothing to divide by)."""

    found: float
    reference: float
    both: float

    @classmethod
    def of(cls, found: Iterable[Episode], reference: Iterable[Episode]) -> "DurationAgreement":
        found, reference = list(found), list(reference)
        return cls(total_seconds(found), total_seconds(reference),
                   overlap_seconds(found, reference))

    def __add__(self, other: "DurationAgreement") -> "DurationAgreement":
        return DurationAgreement(self.found + other.found, self.reference + other.reference,
                                 self.both + other.both)

    @property
    def sensitivity(self) -> float:
        return self.both / self.reference if self.reference else float("nan")

    @property
    def positive_predictivity(self) -> float:
        return self.both / self.found if self.found else float("nan")


def _union(episodes: Iterable[Episode]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for start, end in sorted((item.start_s, item.end_s) for item in episodes):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def _length(spans: list[tuple[float, float]]) -> float:
    return float(sum(end - start for start, end in spans))
