"""The R-peak detector: neurokit2's implementation of the UNSW detector (Khamis et al.,
2016), run at :data:`DETECTOR_FS` whatever the recording's rate, each peak then moved to
the largest magnitude of the band-passed lead within 25 ms (and on to its summit when that
lies just beyond), so that every beat's window is
centred on its R wave whichever its polarity, and no two beats kept within the refractory
period.

Chosen by measurement on the 44 non-paced MIT-BIH records against the cardiologists'
beats, among sleepecg's detector, wfdb's XQRS and neurokit2's methods, with and without
pre-filtering and refinement (``scripts/benchmark_mitdb.py --parts peaks``, table in
docs/benchmarks.md): the best balance of sensitivity and positive predictivity. Run at the
recording's own rate, its fixed filter lengths and search windows are wrong away from
360 Hz (at 128 Hz it found every beat twice on some records): the lead is resampled to
360 Hz for it, and its peaks mapped back (``scripts/benchmark_beat_detection.py``
measures it at 128 to 1,000 Hz and in noise).
"""

from __future__ import annotations

import importlib
import time

import numpy as np

from .filters import resample, resampling_ratio

#: The rate the detector runs at: a lead of another rate is resampled to it first.
DETECTOR_FS = 360.0
#: How far a detected peak may move to the largest magnitude of the band-passed lead.
REFINE_SECONDS = 0.025
#: Two R peaks closer than this are one beat, the larger kept: the ventricles cannot beat
#: again so soon (300 a minute, faster than ventricular flutter is counted beat by beat).
REFRACTORY_SECONDS = 0.2


def import_detector() -> float:
    """Import the detector's library (neurokit2, which the signal-quality tests use too)
    now rather than at the first beat found; returns the seconds it took. Its import takes
    seconds, and the memory of what it imports (docs/benchmarks.md, "Live ECG streams"):
    a service whose live streams must answer within a second imports it before it says it
    is ready."""
    started = time.perf_counter()
    importlib.import_module("neurokit2")
    return time.perf_counter() - started


def detect_r_peaks(signal: np.ndarray, fs: float, filtered: np.ndarray) -> np.ndarray:
    """Sample indices (int64, increasing, unique) of the R peaks of one lead of ECG.

    ``signal`` is the raw lead, which the detector reads (at :data:`DETECTOR_FS`);
    ``filtered`` the same lead band-passed (:func:`anomaly.recordings.filters.band_pass`),
    where each peak is moved to its largest magnitude, and where of two peaks within
    :data:`REFRACTORY_SECONDS` the smaller is dropped. A lead too short or flat to hold a
    beat has none.
    """
    import neurokit2

    if len(signal) < 2 * fs or not np.ptp(signal) > 0:
        return np.empty(0, dtype=np.int64)
    ratio = resampling_ratio(fs, DETECTOR_FS)
    _, info = neurokit2.ecg_peaks(resample(signal, ratio), sampling_rate=float(fs * ratio),
                                  method="khamis2016")
    found = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
    peaks = np.unique(np.round(found * ratio.denominator / ratio.numerator).astype(np.int64))
    peaks = peaks[(peaks >= 0) & (peaks < len(signal))]
    if len(peaks) == 0:
        return peaks
    magnitude = np.abs(filtered)
    radius = int(round(REFINE_SECONDS * fs))
    around = np.clip(peaks[:, None] + np.arange(-radius, radius + 1), 0, len(signal) - 1)
    moved = around[np.arange(len(peaks)), np.argmax(magnitude[around], axis=1)]
    moved = np.unique(climb(moved, magnitude, radius))
    return one_per_refractory_period(moved, magnitude, int(round(REFRACTORY_SECONDS * fs)))


def climb(peaks: np.ndarray, magnitude: np.ndarray, steps: int) -> np.ndarray:
    """Each of ``peaks`` moved up ``magnitude`` to its local maximum, at most ``steps``
    samples. A peak on the edge of its search window (its R wave's summit just outside it)
    then reaches the summit wherever the detector put it: the detector's own peak moves
    by a sample with the stretch of lead it is given, and a live stream gives it other
    stretches than a recorded file."""
    peaks = peaks.copy()
    last = len(magnitude) - 1
    for _ in range(steps):
        left = magnitude[np.maximum(peaks - 1, 0)]
        right = magnitude[np.minimum(peaks + 1, last)]
        here = magnitude[peaks]
        step = np.where((right > here) & (right >= left), 1, np.where(left > here, -1, 0))
        if not step.any():
            break
        peaks += step
    return peaks


def one_per_refractory_period(peaks: np.ndarray, magnitude: np.ndarray,
                              refractory: int) -> np.ndarray:
    """``peaks`` (increasing) with no two within ``refractory`` samples: taken from the
    largest ``magnitude`` down, a peak is kept unless a kept one lies within the period.

    Largest first, so that a chain of close peaks (a beat, noise on its slope, the next
    beat) keeps both beats: a left-to-right pass would let the middle peak replace the
    first and then lose to the second.
    """
    if len(peaks) < 2 or np.diff(peaks).min() >= refractory:
        return peaks
    kept = np.zeros(len(peaks), dtype=bool)
    for index in np.argsort(-magnitude[peaks], kind="stable"):
        left = np.searchsorted(peaks, peaks[index] - refractory + 1)
        right = np.searchsorted(peaks, peaks[index] + refractory)
        if not kept[left:right].any():
            kept[index] = True
    return peaks[kept]
