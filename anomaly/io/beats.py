"""Beats as every reader gives them and the scoring loop takes them.

One type for "some beats": a CSV block parsed (:mod:`anomaly.io.csv_parser`), a whole CSV
file read (:func:`anomaly.io.readers.read_beats`), a recording's beats as a scoring block
(:class:`anomaly.scoring.sources.RecordingSource`). A recording's own reader has its
beats' timing first (:class:`anomaly.recordings.segment.RecordingBeats`), and a run keeps a
few beats for pictures (:class:`anomaly.scoring.summary.ScoredBeat`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from .layout import CsvLayout

#: A rejected row: its 1-based line, the reason, and the row's text as it was read.
Reject = tuple[int, str, str]


def is_anomaly(scores: np.ndarray, threshold: float, readable: np.ndarray) -> np.ndarray:
    """The flag: a score above the threshold, on a beat that could be read (see
    :attr:`Beats.readable`: a beat of a recording's unreadable stretch is scored, never
    flagged)."""
    return (scores > threshold) & readable


@dataclass(frozen=True)
class Beats:
    """Beats read from an input (all of it, or a block), and the rows it rejected.

    Attributes
    ----------
    values : ndarray of shape (n, n_values), float64
        The samples, exactly as written (for a model with a context, the samples then
        the context, once the scoring loop has added it).
    lines : ndarray of shape (n,), int64
        Where each beat is in its input: a CSV file's 1-based line, a recording's beat
        number. For messages and for ordering.
    ids : dict of str to ndarray of shape (n,)
        The columns that identify each beat in outputs, written before its score (a
        beats CSV's ``record``, ``beat``, ``sample``...; a scoring block's ``row``).
    labels : ndarray of shape (n,), object, or None
        The label text, when a label column was chosen (or annotations read).
    label_header : str or None
        The labels' column name in outputs.
    truth : ndarray of shape (n,), int8, or None
        1 where the label marks an anomaly, 0 where it marks a normal beat.
    rejects : sequence of Reject
        Rows of the block rejected (``--on-bad-row skip``).
    positions : ndarray of shape (n,), int64, or None
        For beats of a recording: each one's R peak (its sample in the recording).
    layout : CsvLayout or None
        The layout of the CSV file they were read from (delimiter, header, columns).
    """

    values: np.ndarray
    lines: np.ndarray
    ids: dict[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None
    label_header: str | None = None
    truth: np.ndarray | None = None
    rejects: Sequence[Reject] = ()
    positions: np.ndarray | None = None
    layout: "CsvLayout | None" = None

    def __len__(self) -> int:
        return len(self.values)

    @property
    def readable(self) -> np.ndarray:
        """Whether each beat can be read: its id ``unreadable`` empty, or no such id (see
        :data:`anomaly.io.layout.ID_COLUMN_TYPES`). A beat that cannot is scored but never
        flagged."""
        unreadable = self.ids.get("unreadable")
        if unreadable is None:
            return np.ones(len(self), dtype=bool)
        return np.asarray(unreadable, dtype=object) == ""

    @property
    def n_samples(self) -> int:
        """Values per beat."""
        return self.values.shape[1]

    @property
    def label_name(self) -> str | None:
        """The label column's name in the input, for messages (as ``label_header`` when
        the beats come from no CSV file)."""
        return self.label_header if self.layout is None else self.layout.label_name
