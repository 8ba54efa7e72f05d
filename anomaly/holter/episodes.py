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


def join_close(spans: Iterable[tuple[int, int]], times: np.ndarray,
               gap_s: float) -> list[tuple[int, int]]:
    """Spans of beats (``(first, last)`` indices into ``times``, in order) joined where
    one starts at most ``gap_s`` after the previous one ends."""
    joined: list[tuple[int, int]] = []
    for first, last in spans:
        if joined and times[first] - times[joined[-1][1]] <= gap_s:
            joined[-1] = (joined[-1][0], last)
        else:
            joined.append((first, last))
    return joined


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


@dataclass(frozen=True)
class EpisodeAgreement:
    """How found episodes agree with reference ones episode by episode: ``reference``
    episodes of which ``detected`` overlap a found one, and ``found`` episodes of which
    ``true`` overlap a reference one (each within ``slack_s`` of :meth:`of`)."""

    reference: int
    detected: int
    found: int
    true: int

    @classmethod
    def of(cls, found: Iterable[Episode], reference: Iterable[Episode], *,
           slack_s: float = 1.0) -> "EpisodeAgreement":
        found, reference = list(found), list(reference)

        def meets(one: Episode, other: Episode) -> bool:
            return one.start_s - slack_s <= other.end_s and other.start_s - slack_s <= one.end_s

        return cls(len(reference), sum(any(meets(item, other) for other in found)
                                       for item in reference),
                   len(found), sum(any(meets(item, other) for other in reference)
                                   for item in found))

    def __add__(self, other: "EpisodeAgreement") -> "EpisodeAgreement":
        return EpisodeAgreement(self.reference + other.reference,
                                self.detected + other.detected,
                                self.found + other.found, self.true + other.true)

    @property
    def sensitivity(self) -> float:
        return self.detected / self.reference if self.reference else float("nan")

    @property
    def positive_predictivity(self) -> float:
        return self.true / self.found if self.found else float("nan")
