"""Each beat's window centred on the wave of its QRS complex that matches the patient's
dominant beat, so that the same beat is cut the same way all day long.

A beat's R peak is the largest magnitude of the band-passed lead
(:mod:`.peaks`). Where a QRS complex's R and S waves are of a size, which of them is the
larger changes with breathing, posture and time, and the R peak with it: on MIT-BIH 117
(the R and S waves of 52% of its normal beats within 1.3 times of each other) the first
5 minutes' normal beats were all centred on the S wave, 665 later ones on the R wave,
25 ms earlier, and 655 of those were flagged; on 108, 1,006 of them. An autoencoder
trained on one centring calls the other abnormal.

So a model fitted on a recording keeps the patient's dominant beat
(``BeatWindow.template``: the median of the beats of the dominant rhythm and shape of the
span it was fitted on, :func:`.patient.dominant_template`), and each beat's window, in
training and in scoring alike, is centred on whichever of its QRS complex's peaks
(:func:`aligned_centres`) makes the complex correlate best with the template's. The beat's time and RR intervals stay those of its R peak: only its window
moves. A beat of another shape (a PVC) is centred on one of its own peaks as well, so its
window moves by a wave at most and it stays as unlike the template as it is.

Measured on MIT-BIH patient by patient (``scripts/benchmark_patient.py``, table in
docs/benchmarks.md): normal beats flagged per hour on 117 from 1,690 to 327, on 108 from
2,614 to 676. Searching every shift within :data:`MAX_SHIFT_SECONDS` instead of the
complex's own peaks did as well on those two but moved PVCs onto the template (200: 38
fewer of 699 V beats flagged) and normal beats of 208 off it (233 flagged an hour to 421).
"""

from __future__ import annotations

import numpy as np

from .patient import unit_rows
from .quality import QRS_HALF_SECONDS, qrs_complexes

#: How far from its R peak a beat's window may be centred.
MAX_SHIFT_SECONDS = 0.06
#: A peak of the band-passed lead's magnitude within the shift is one of the complex's
#: when it is at least this share of the R peak's (a smaller wave: 108's small r wave is
#: a third of its S wave).
MIN_PEAK_SHARE = 0.3
#: How much better than the R peak's complex another must match the template for the
#: window to move there: a near tie, which the filter's last digits could tip, keeps the R
#: peak, so that a live stream and the recorded file cut the same window.
MIN_GAIN = 0.05


def template_at(template: np.ndarray, before: int, after: int) -> np.ndarray:
    """``template`` (a beat as the model takes it: its window resampled to its length)
    brought back to a window of ``before + after`` samples of the lead, by linear
    interpolation: sample ``j`` of the window is where the beats' resampling put it."""
    template = np.asarray(template, dtype=np.float64)
    length = before + after
    return np.interp(np.arange(length) * len(template) / length,
                     np.arange(len(template)), template)


def aligned_centres(filtered: np.ndarray, peaks: np.ndarray, template: np.ndarray,
                    before: int, fs: float) -> np.ndarray:
    """Where each beat's window is centred (indices into ``filtered``).

    Of each R peak of ``peaks`` and the peaks of ``|filtered|`` within
    :data:`MAX_SHIFT_SECONDS` of it at least :data:`MIN_PEAK_SHARE` of it, the one whose
    QRS complex (:data:`.quality.QRS_HALF_SECONDS` either side) correlates best with the
    ``template``'s: the template at the lead's rate (:func:`template_at`), its centre
    ``before`` samples in. Another peak wins only by :data:`MIN_GAIN` at least, and only
    where its whole window lies in ``filtered``.

    Raises
    ------
    ValueError
        When ``before`` is not a sample of ``template`` (a template at the model's length
        rather than the lead's, for instance).
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    if not 0 <= before < len(template):
        raise ValueError(f"a template of {len(template)} samples has no sample {before}")
    if len(peaks) == 0:
        return peaks
    half = min(int(round(QRS_HALF_SECONDS * fs)), before, len(template) - 1 - before)
    reference = unit_rows(template[None, before - half:before + half + 1])[0]
    shift = max(1, int(round(MAX_SHIFT_SECONDS * fs)))
    last = len(filtered) - 1
    magnitude = np.abs(filtered)
    around = np.clip(peaks[:, None] + np.arange(-shift, shift + 1), 0, last)
    height = magnitude[around]
    candidate = (height >= magnitude[np.clip(around - 1, 0, last)]) & \
        (height > magnitude[np.clip(around + 1, 0, last)]) & \
        (height >= MIN_PEAK_SHARE * magnitude[peaks][:, None]) & \
        (around - before >= 0) & (around - before + len(template) <= len(filtered))
    own = shift  # The column of each beat's own R peak.
    candidate[:, own] = (peaks - half >= 0) & (peaks + half <= last)
    beat, column = np.nonzero(candidate)
    likeness = np.full(candidate.shape, -np.inf)
    likeness[beat, column] = unit_rows(
        qrs_complexes(filtered, around[beat, column], half)) @ reference
    rows = np.arange(len(peaks))
    best = np.argmax(likeness, axis=1)
    moves = np.isfinite(likeness[rows, best]) & \
        (likeness[rows, best] >= likeness[:, own] + MIN_GAIN)
    best = np.where(moves, best, own)
    return around[rows, best]
