"""What a scoring run computed: counts per input, the run's scores for metrics and
pictures, and the run report, the one JSON schema every scoring command writes.

Memory stays flat in the inputs' size: per row only its score (and its label's truth) is
kept, plus a few beats for pictures.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io.beats import Beats, Reject, is_anomaly

if TYPE_CHECKING:
    from ..holter.summary import RecordingRhythm
    from ..recordings.quality import Analysable

#: How many of the most anomalous beats a run keeps for its plots and HTML report.
TOP_BEATS = 6
#: How many beats called normal are kept as candidates for the "typical normal beat".
NORMAL_SAMPLE = 512


@dataclass(frozen=True)
class Counts:
    """Rows of one input (or part of one): scored, rejected (with the first), anomalies,
    and of those scored, the beats of a recording's unreadable stretches (never flagged)."""

    rows_scored: int = 0
    rows_rejected: int = 0
    anomalies: int = 0
    first_reject: Reject | None = None
    rows_unreadable: int = 0

    @property
    def rows_read(self) -> int:
        return self.rows_scored + self.rows_rejected

    def __add__(self, other: "Counts") -> "Counts":
        """The counts of this part followed by ``other``."""
        return Counts(self.rows_scored + other.rows_scored,
                      self.rows_rejected + other.rows_rejected,
                      self.anomalies + other.anomalies,
                      self.first_reject or other.first_reject,
                      self.rows_unreadable + other.rows_unreadable)


@dataclass
class ScoredBeat:
    """One beat kept for pictures: where it came from, its samples and its score."""

    input: str
    line: int
    score: float
    values: np.ndarray
    label: str | None = None
    #: For a recording's beat: its R peak's time (seconds from the recording's start).
    time_s: float | None = None
    #: For a beats file's: its ``row`` in the scores (its line less the header's).
    row: int | None = None
    #: For a recording's: its RR intervals before and after it and their local mean
    #: (seconds, NaN where unknown), which its score weighs beside its shape.
    rr_s: tuple[float, float, float] | None = None


@dataclass
class ScoreSummary:
    """Scores, truth and a few beats of a run (or of one input), for metrics and pictures."""

    threshold: float
    scores: list[np.ndarray] = field(default_factory=list)
    #: Per row, whether it could be read (a byte a row, beside its score's eight).
    readable: list[np.ndarray] = field(default_factory=list)
    truth: list[np.ndarray] = field(default_factory=list)
    has_labels: bool = True
    top: list[tuple[float, int, int, ScoredBeat]] = field(default_factory=list)
    normals: list[ScoredBeat] = field(default_factory=list)
    #: For each recording: the R peak (sample), the score and whether it could be read, of
    #: every beat, block by block.
    timelines: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = field(
        default_factory=dict)
    #: For each recording: how much of it could be read, and where not.
    analysable: dict[str, "Analysable"] = field(default_factory=dict)

    def add(self, input_name: str, block: Beats, scores: np.ndarray, readable: np.ndarray, *,
            input_index: int = 0) -> None:
        """Record one scored block of the run's input number ``input_index``, whose rows
        could be read where ``readable``. A beat of an unreadable stretch is in the
        timeline (drawn apart) and the metrics (never flagged) but never among the most
        anomalous or the normal beats kept."""
        self.add_scores(input_name, scores, readable, truth=block.truth,
                        positions=block.positions)
        for row in top_rows(scores, readable, TOP_BEATS):
            self.keep_top((float(scores[row]), -input_index, -int(block.lines[row]),
                            _beat(input_name, block, scores, row)))
        for row in normal_sample_rows(scores, readable, self.threshold,
                               NORMAL_SAMPLE - len(self.normals)):
            self.normals.append(_beat(input_name, block, scores, row))

    def add_scores(self, input_name: str, scores: np.ndarray, readable: np.ndarray, *,
                   truth: np.ndarray | None = None, positions: np.ndarray | None = None
                   ) -> None:
        """Record the scores of rows of an input (and whether each could be read), with
        their truth when labelled, and for a recording's beats their R peaks (samples):
        no beat is kept for pictures (see :meth:`add`, :meth:`keep_top`)."""
        self.scores.append(scores)
        self.readable.append(readable)
        if positions is not None:
            self.timelines.setdefault(input_name, []).append((positions, scores, readable))
        if truth is None:
            self.has_labels = False
        else:
            self.truth.append(truth)

    def merge(self, other: "ScoreSummary") -> None:
        """Add the summary of what follows this one's blocks (a later input, a later
        Dask partition)."""
        self.scores += other.scores
        self.readable += other.readable
        self.truth += other.truth
        for name, parts in other.timelines.items():
            self.timelines.setdefault(name, []).extend(parts)
        self.analysable.update(other.analysable)
        self.has_labels = self.has_labels and other.has_labels
        for entry in other.top:
            self.keep_top(entry)
        self.normals += other.normals[:NORMAL_SAMPLE - len(self.normals)]

    def keep_top(self, entry: tuple) -> None:
        """Keep ``(score, -input index, -line, ScoredBeat)`` if among the
        :data:`TOP_BEATS` highest."""
        # Ties in score go to the earlier beat (by input, then line), so the kept beats
        # do not depend on the order in which blocks are added.
        if len(self.top) < TOP_BEATS:
            heapq.heappush(self.top, entry)
        elif entry[:3] > self.top[0][:3]:
            heapq.heapreplace(self.top, entry)

    @property
    def all_scores(self) -> np.ndarray:
        return np.concatenate(self.scores) if self.scores else np.empty(0)

    def readable_scores(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The scores (and truth, with labels) of the rows that could be read: what a
        histogram of the run shows (a lead off's scores would stretch it)."""
        readable = np.concatenate(self.readable) if self.readable else np.empty(0, dtype=bool)
        truth = self.all_truth
        return self.all_scores[readable], None if truth is None else truth[readable]

    @property
    def all_truth(self) -> np.ndarray | None:
        if not self.has_labels or not self.truth:
            return None
        return np.concatenate(self.truth)

    def timeline(self, input_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(R-peak samples, scores, readable)`` of every beat of a recording, in order."""
        parts = self.timelines[input_name]
        return tuple(np.concatenate([part[column] for part in parts]) for column in range(3))

    def most_anomalous(self) -> list[ScoredBeat]:
        """The kept beats with the highest scores, highest first."""
        return [entry[-1] for entry in sorted(self.top, key=lambda entry: entry[:3], reverse=True)]

    def typical_normal(self) -> ScoredBeat | None:
        """The beat with the median score among the kept beats called normal."""
        if not self.normals:
            return None
        ordered = sorted(self.normals, key=lambda beat: beat.score)
        return ordered[len(ordered) // 2]

    def metrics(self) -> dict[str, Any] | None:
        """Detection metrics over every labelled row of the run (anomaly = positive)."""
        from ..report.metrics import detection_report

        truth = self.all_truth
        if truth is None:
            return None
        scores = self.all_scores
        return detection_report(truth, scores,
                                is_anomaly(scores, self.threshold, np.concatenate(self.readable)))


def top_rows(scores: np.ndarray, readable: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` rows of highest score among the ``readable`` ones, highest first, of
    equal scores the earlier first (as :meth:`ScoreSummary.keep_top` breaks ties)."""
    rows = np.flatnonzero(readable)
    return rows[np.argsort(-scores[rows], kind="stable")][:max(count, 0)]


def normal_sample_rows(scores: np.ndarray, readable: np.ndarray, threshold: float,
                count: int) -> np.ndarray:
    """The first ``count`` readable rows scored at or under ``threshold``: the sample of
    normal beats a typical one is chosen from."""
    return np.flatnonzero((scores <= threshold) & readable)[:max(count, 0)]


def _beat(input_name: str, block: Beats, scores: np.ndarray, row: int) -> ScoredBeat:
    label = None if block.labels is None else str(block.labels[row])
    time_s = float(block.ids["time_s"][row]) if "time_s" in block.ids else None
    number = int(block.ids["row"][row]) if "row" in block.ids else None
    return ScoredBeat(input_name, int(block.lines[row]), float(scores[row]),
                      block.values[row].copy(), label=label, time_s=time_s, row=number,
                      rr_s=rr_intervals(block.ids, row))


def rr_intervals(columns, row: int) -> tuple[float, float, float] | None:
    """A recording beat's ``rr_prev_s``, ``rr_next_s`` and ``rr_local_mean_s`` from its
    ``columns`` (a block's ids, a scores file's columns); None for a beats file's."""
    names = ("rr_prev_s", "rr_next_s", "rr_local_mean_s")
    if not all(name in columns for name in names):
        return None
    return tuple(float(columns[name][row]) for name in names)


@dataclass
class ScoredInput:
    """What an engine computed for one input."""

    counts: Counts
    summary: ScoreSummary
    sha256: str | None = None


@dataclass
class InputResult:
    """One input of a run, as the run report shows it."""

    input: str
    output: str | None
    sha256: str | None = None
    rows_read: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    anomalies: int = 0
    seconds: float = 0.0
    rejects_file: str | None = None
    skipped: str | None = None
    #: Rows scored but never flagged: their ``unreadable`` id says why (see
    #: :attr:`anomaly.io.beats.Beats.readable`).
    rows_unreadable: int = 0
    #: A recording's: how much of it could be read.
    analysable: "Analysable | None" = None
    #: A recording's, when the run writes a report: its heart rate, atrial fibrillation
    #: and morphology families (:class:`anomaly.holter.summary.RecordingRhythm`).
    rhythm: "RecordingRhythm | None" = None

    def as_json(self) -> dict[str, Any]:
        data = {key: value for key, value in self.__dict__.items()
                if value is not None and key not in ("analysable", "rhythm")}
        if self.analysable is not None:
            data["recording"] = self.analysable.as_json()
        if self.rhythm is not None:
            data["rhythm"] = self.rhythm.as_json()
        data["seconds"] = round(self.seconds, 3)
        if self.skipped is None:
            data["rows_per_second"] = round(self.rows_scored / self.seconds, 1) if self.seconds else None
        return data


@dataclass
class RunResult:
    """A finished run: one :class:`InputResult` per input (in input order), the run's
    summary and metrics, and what the report records about the run itself."""

    inputs: list[InputResult]
    summary: ScoreSummary
    engine: str
    model: dict[str, Any]
    created: str
    seconds: dict[str, float]
    metrics: dict[str, Any] | None = None
    plots: list[str] = field(default_factory=list)
    html: str | None = None
    #: How the inputs were read (:meth:`anomaly.scoring.plan.ScoreOptions.as_json`).
    options: dict[str, Any] | None = None
    #: When ``anomaly summary`` made the report from the run's scores (ISO 8601).
    summarised: str | None = None

    @property
    def anomalies(self) -> int:
        return self.total("anomalies")

    def total(self, key: str) -> int:
        return sum(getattr(item, key) for item in self.inputs)

    def report(self) -> dict[str, Any]:
        """The run report (``--report``): what was scored, with which model, how fast and,
        with labels, how well."""
        scored = [item for item in self.inputs if item.skipped is None]
        seconds = dict(self.seconds, total=sum(self.seconds.values()))
        rows = self.total("rows_scored")
        report: dict[str, Any] = {"created": self.created}
        if self.summarised is not None:
            report["summarised"] = self.summarised
        report.update({
            "engine": self.engine,
            "model": self.model,
            "inputs": [item.as_json() for item in self.inputs],
            "rows_read": self.total("rows_read"),
            "rows_scored": rows,
            "rows_rejected": self.total("rows_rejected"),
            "anomalies": self.anomalies,
            "inputs_scored": len(scored),
            "inputs_skipped": len(self.inputs) - len(scored),
            "seconds": {key: round(value, 3) for key, value in seconds.items()},
            "rows_per_second": round(rows / seconds["scoring"], 1) if seconds["scoring"] else None,
        })
        if self.options is not None:
            report["options"] = self.options
        if self.metrics is not None:
            report["metrics"] = self.metrics
        if self.plots:
            report["plots"] = self.plots
        if self.html is not None:
            report["html"] = self.html
        return report
