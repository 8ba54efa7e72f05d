"""The R-peak detector: neurokit2's implementation of the UNSW detector (Khamis et al.,
2016), run at :data:`DETECTOR_FS` whatever the recording's rate, each peak then moved to
the largest magnitude of the band-passed lead within 25 ms (and on to its summit when that
lies just beyond), so that every beat's window is
centred on its R wave whichever its polarity, no two beats kept within the refractory
period, and a T wave found soon after its beat not kept as a beat (:func:`t_waves`).

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
from numpy.lib.stride_tricks import sliding_window_view

from .filters import resample, resampling_ratio
from .patient import correlation

#: The rate the detector runs at: a lead of another rate is resampled to it first.
DETECTOR_FS = 360.0
#: How far a detected peak may move to the largest magnitude of the band-passed lead.
REFINE_SECONDS = 0.025
#: Two R peaks closer than this are one beat, the larger kept: the ventricles cannot beat
#: again so soon (300 a minute, faster than ventricular flutter is counted beat by beat).
REFRACTORY_SECONDS = 0.2
#: A peak this soon after the beat before it ...
T_WAVE_SECONDS = 0.45
#: ... whose band-passed wave is under these shares of that beat's QRS complex, in size
#: (peak to peak) and in slope (the largest), both within :data:`T_WAVE_HALF_SECONDS` of
#: each peak (a small peak), is that beat's T wave, or a bump of the baseline after it,
#: not a beat (:func:`t_waves`) ...
T_WAVE_SIZE = 0.35
T_WAVE_SLOPE = 0.25
T_WAVE_HALF_SECONDS = 0.05
#: ... and whose wave, :data:`T_WAVE_SHAPE_SECONDS` either side, correlates at least this
#: much with what the lead usually shows as long after a beat (the median over the
#: :data:`T_WAVE_BEATS` beats before: their T waves). A small premature beat on the T wave
#: changes its shape, and is kept.
T_WAVE_LIKENESS = 0.9
#: ... and as large as them, within this ratio either way: a premature beat on the T wave
#: adds its own height to the wave's (a wide PVC of half the beat's height, band-passed
#: a quarter of its QRS complex's size, correlated with the T waves at 0.9 and more).
T_WAVE_SIZE_MATCH = 1.3
T_WAVE_SHAPE_SECONDS = 0.1
T_WAVE_BEATS = 8
#: A wave is judged on at least this many of those beats (else it is kept), found among
#: at most :data:`T_WAVE_LOOKBACK` beats before it.
T_WAVE_LEAST_BEATS = 3
T_WAVE_LOOKBACK = 4 * T_WAVE_BEATS
#: How far the T waves of the beats before may lie from the same lag (they move with the
#: rate).
T_WAVE_SHIFT_SECONDS = 0.05


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
    kept = one_per_refractory_period(moved, magnitude, int(round(REFRACTORY_SECONDS * fs)))
    return kept[~t_waves(kept, filtered, fs)]


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


def t_waves(peaks: np.ndarray, filtered: np.ndarray, fs: float) -> np.ndarray:
    """Which of ``peaks`` (increasing) are T waves: within :data:`T_WAVE_SECONDS` of the
    beat before them, under :data:`T_WAVE_SIZE` of its QRS complex's size and
    :data:`T_WAVE_SLOPE` of its slope in the band-passed lead ``filtered`` (small), and
    shaped like what follows the beats before it as long after them
    (:data:`T_WAVE_LIKENESS`).

    Pan and Tompkins's (1985) T-wave test, with size beside slope, and the shape so that a
    premature beat is not taken for one: a tall T wave soon after its beat (MIT-BIH 113,
    231) is found as a beat by the detector, and its interval, half the usual one, makes
    a normal beat on either side look premature or late. A premature beat that soon,
    ventricular or not, has a complex of its own: as tall or as steep as the beat before
    it, or, small, unlike the T wave it falls on, or larger. Where the detector finds
    every beat's T wave no beat shows the lead's own wave to compare with, and the T waves
    stay beats (the detector's failure at a rate it was not tuned for, which running it at
    360 Hz avoids).
    """
    small = np.zeros(len(peaks), dtype=bool)
    half = max(1, int(round(T_WAVE_HALF_SECONDS * fs)))
    slope = np.abs(np.diff(filtered, prepend=filtered[:1]))

    def measures(peak: int) -> tuple[float, float]:
        around = slice(max(0, peak - half), peak + half + 1)
        return float(np.ptp(filtered[around])), float(slope[around].max())

    beat = 0  # The last peak not small: the beat a small one may be the T wave of.
    for index in range(1, len(peaks)):
        if peaks[index] - peaks[beat] < T_WAVE_SECONDS * fs:
            size, steepness = measures(peaks[index])
            beat_size, beat_steepness = measures(peaks[beat])
            small[index] = size < T_WAVE_SIZE * beat_size and \
                steepness < T_WAVE_SLOPE * beat_steepness
        if not small[index]:
            beat = index
    waves = np.zeros(len(peaks), dtype=bool)
    beats = np.flatnonzero(~small)
    shape = max(1, int(round(T_WAVE_SHAPE_SECONDS * fs)))
    shift = max(1, int(round(T_WAVE_SHIFT_SECONDS * fs)))
    for index in np.flatnonzero(small):
        latest = int(np.searchsorted(beats, index)) - 1  # Its beat (the first peak never is small).
        # The beats before that, latest first, each with the peak that follows it: only a
        # beat that no peak follows as soon shows the lead's own wave there (a small PVC
        # after every normal beat of a bigeminy is as alike as a T wave after each).
        earlier = [(peaks[beats[place]], peaks[beats[place] + 1])
                   for place in range(latest - 1, max(-1, latest - 1 - T_WAVE_LOOKBACK), -1)]
        waves[index] = _like_t_waves(filtered, peaks[index], peaks[beats[latest]], earlier,
                                     shape, shift)
    return waves


def _like_t_waves(filtered: np.ndarray, candidate: int, beat: int,
                  earlier: list[tuple[int, int]], shape: int, shift: int) -> bool:
    """Whether the wave at sample ``candidate`` (``shape`` samples either side), a time
    after its ``beat``, is like what the lead shows as long after the ``earlier`` beats
    (each with the peak that follows it, latest first) that no peak follows as soon: its
    median best correlation with the first :data:`T_WAVE_BEATS` of them, each shifted by
    up to ``shift`` samples (a T wave comes later as the rate slows), at least
    :data:`T_WAVE_LIKENESS`. Not judged (False) with fewer than
    :data:`T_WAVE_LEAST_BEATS` such beats."""
    lag = candidate - beat
    if not shape <= candidate < len(filtered) - shape:
        return False
    wave = filtered[candidate - shape:candidate + shape + 1]
    likeness, sizes = [], []
    for peak, following in earlier:
        start = peak + lag - shift - shape
        if following - peak <= lag + shift + shape or start < 0:
            continue
        windows = sliding_window_view(filtered[start:peak + lag + shift + shape + 1],
                                      len(wave))
        correlations = correlation(windows, wave)
        best = int(np.argmax(correlations))
        likeness.append(correlations[best])
        sizes.append(np.ptp(wave) / max(float(np.ptp(windows[best])), 1e-12))
        if len(likeness) == T_WAVE_BEATS:
            break
    return len(likeness) >= T_WAVE_LEAST_BEATS and \
        float(np.median(likeness)) >= T_WAVE_LIKENESS and \
        1 / T_WAVE_SIZE_MATCH <= float(np.median(sizes)) <= T_WAVE_SIZE_MATCH
