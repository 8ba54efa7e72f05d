"""File-level fit and score: the library the CLI and the demo are built on.

Data flows one way: file -> reader -> detector -> result (-> writers and plots).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .exceptions import InputError
from .readers import Beats, anomaly_truth, read_beats


@dataclass(frozen=True)
class TrainingData:
    """The normal traces of a training file and what was left out."""

    beats: Beats
    normal: np.ndarray
    n_skipped: int


@dataclass
class ScoredBatch:
    """Scores and flags for every beat of one file, and metrics when it has labels."""

    beats: Beats
    scores: np.ndarray
    is_anomaly: np.ndarray
    threshold: float
    truth: np.ndarray | None = None
    metrics: dict[str, Any] | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_anomalies(self) -> int:
        return int(self.is_anomaly.sum())

    def summary(self) -> dict[str, Any]:
        """The JSON report: what was scored, with what threshold, and how well."""
        summary: dict[str, Any] = {
            "input": self.beats.path,
            "rows": len(self.beats),
            "anomalies": self.n_anomalies,
            "threshold": self.threshold,
            "seconds": round(self.seconds, 3),
        }
        if self.metrics is not None:
            summary["metrics"] = self.metrics
        summary.update(self.extra)
        return summary

    def run_summary(self):
        """This batch as a :class:`anomaly.batch.RunSummary`, for plots and reports."""
        from .batch import RunSummary

        summary = RunSummary(self.threshold)
        summary.add(self.beats.path, self.beats, self.scores, self.truth)
        return summary


def load_training_data(
    path: str | os.PathLike,
    *,
    label_column: str | int | None = None,
    normal_label: str = "1",
    header: bool | None = None,
) -> TrainingData:
    """Read a training file; with a label column keep only the normal rows."""
    beats = read_beats(path, label_column=label_column, header=header)
    if beats.labels is None:
        is_normal = np.ones(len(beats), dtype=bool)
        which = "rows"
    else:
        is_normal = anomaly_truth(beats, normal_label) == 0
        which = f"rows with the normal label {normal_label!r} in column {beats.label_name!r}"
    if is_normal.sum() < 2:
        raise InputError(f"{path}: {int(is_normal.sum())} {which}; at least 2 are needed to train")
    return TrainingData(beats, beats.values[is_normal], int((~is_normal).sum()))


def score_beats(detector, beats: Beats, *, normal_label: str = "1") -> ScoredBatch:
    """Score beats held in memory with a fitted detector; metrics when they carry labels."""
    from .batch import score_block
    from .metrics import detection_report

    started = time.perf_counter()
    if beats.lines is None:
        beats = replace(beats, lines=np.arange(1, len(beats) + 1))
    scores, is_anomaly, truth = score_block(detector, beats, normal_label)
    batch = ScoredBatch(beats, scores, is_anomaly, float(detector.threshold_), truth)
    if truth is not None:
        batch.metrics = detection_report(truth, scores, is_anomaly)
    batch.seconds = time.perf_counter() - started
    return batch
