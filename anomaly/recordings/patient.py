"""Which beats of an unlabelled recording a patient's model is trained on: those of the
patient's dominant rhythm and shape.

A Holter recording comes without labels, and a patient's own ectopic beats may be
frequent: in bigeminy every other beat is a PVC. Trained on every beat, the autoencoder
learns them as normal and calls them so (MIT-BIH 119, fitted on its first 5 minutes: 2
of 364 later V beats flagged). So, without labels, a beat is trained on only when it is

1. **on time**: not premature, the interval from the previous R peak at least
   :data:`PREMATURE_RATIO` of the local mean (most S and V beats come early);
2. **of the dominant shape**: its correlation with the template, the median of the beats
   kept so far, at least :data:`MIN_CORRELATION` (the template computed first from the
   beats on time, then again from those kept, :data:`ROUNDS` times).

On MIT-BIH it keeps nearly no V beat and most N beats, and a model trained so finds the V
beats a model trained on every beat misses (``scripts/benchmark_patient.py``, figures in
docs/benchmarks.md). The k of such a model's threshold is
:data:`anomaly.recordings.RECORDING_THRESHOLD_K`. It cannot tell an
ectopic rhythm that is the patient's dominant one (an idioventricular rhythm, a
junctional one) from a normal one: the dominant rhythm is taken as the patient's normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .rhythm import rr_ratios

if TYPE_CHECKING:
    from .segment import RecordingBeats

#: A beat whose RR interval from the previous beat is below this fraction of the local
#: mean is premature.
PREMATURE_RATIO = 0.9
#: The least correlation with the dominant beat's template of a beat trained on.
MIN_CORRELATION = 0.9
#: How many times the template is computed (from the beats on time, then from those kept).
ROUNDS = 2


@dataclass(frozen=True)
class DominantBeats:
    """Which beats are of the dominant rhythm and shape (``kept``), and of those that are
    not, how many are premature and how many are on time but of another shape; the
    ``template`` they were chosen by (None when no beat was on time)."""

    kept: np.ndarray
    premature: int
    other_shape: int
    template: np.ndarray | None = None

    @property
    def left_out(self) -> str:
        """``12 premature, 30 of another shape``."""
        return f"{self.premature} premature, {self.other_shape} of another shape"

    def describe(self) -> str:
        """``beats outside the dominant rhythm and shape (12 premature, 30 of another
        shape)``: the beats left out, for the fit's summary."""
        return f"beats outside the dominant rhythm and shape ({self.left_out})"


#: A fit on a recording without labels whose beats of the dominant rhythm and shape are
#: fewer than this share of those read is warned about (MIT-BIH 108, 203, 207 and 232's
#: first 5 minutes: 13% to 33%; a noisy simulated recording: 17%).
DOMINANT_SHARE = 0.5


def few_dominant_note(kept: int, read: int) -> str | None:
    """What a fit without labels should say when only ``kept`` of the ``read`` beats are
    of the dominant rhythm and shape, under :data:`DOMINANT_SHARE` (None otherwise)."""
    if read == 0 or kept >= DOMINANT_SHARE * read:
        return None
    return (f"{kept} of the {read} beats read ({kept / read:.0%}) are of the dominant rhythm "
            "and shape; the model trains on them only: the span is noisy, irregular or "
            "mostly ectopic, and what it learns as normal rests on few beats. Look at its "
            "beats (anomaly plot) or fit on a cleaner span (--from, --to).")


def unit_rows(values: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm (a flat row stays zero), so that the dot
    product of two rows is their correlation."""
    centred = values - values.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    return centred / np.where(norms > 0, norms, 1.0)


def correlation(values: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Each row of ``values`` correlated with ``template`` (Pearson; 0 for a flat row)."""
    return unit_rows(values) @ unit_rows(np.asarray(template)[None, :])[0]


def dominant_beats(values: np.ndarray, rr_prev: np.ndarray, rr_next: np.ndarray,
                   rr_local_mean: np.ndarray) -> DominantBeats:
    """The beats of the dominant rhythm and shape among ``values`` (shape ``(n,
    samples)``), by their RR intervals (seconds; NaN where unknown, taken as on time)."""
    on_time = rr_ratios(rr_prev, rr_next, rr_local_mean)[:, 0] >= PREMATURE_RATIO
    kept, template = on_time, None
    for _ in range(ROUNDS):
        if not kept.any():
            break
        template = np.median(values[kept], axis=0)
        kept = on_time & (correlation(values, template) >= MIN_CORRELATION)
    return DominantBeats(kept, int((~on_time).sum()), int((on_time & ~kept).sum()),
                         template)


def dominant_template(beats: "RecordingBeats") -> np.ndarray:
    """The patient's dominant beat, which beats are then aligned on (:mod:`.alignment`):
    the template the readable beats of the dominant rhythm and shape were chosen by
    (:func:`dominant_beats`); without a readable beat on time, the median of the readable
    beats (of every beat when none is readable)."""
    readable = beats.readable
    dominant = dominant_beats(beats.values[readable], beats.rr_prev[readable],
                              beats.rr_next[readable], beats.rr_local_mean[readable])
    if dominant.template is not None:
        return dominant.template
    return np.median(beats.values[readable] if readable.any() else beats.values, axis=0)
