"""Atrial fibrillation episodes from the RR series.

In atrial fibrillation the ventricles are driven by an atrium that fibrillates: the RR
intervals lose all order. The detector is Petrėnas, Marozas and Sörnmo's low-complexity
one (Computers in Biology and Medicine 65:184-191, 2015), with its published parameters:
it was tuned on the Long-Term AF Database, not on the database this package is measured
on (MIT-BIH Arrhythmia, ``scripts/benchmark_rhythm.py``). Per RR interval:

- a 3-interval median filter takes out a single premature beat's short-long pair, and a
  forward-backward exponential average (``alpha``) gives the RR trend;
- the irregularity is the share of pairs among the last ``window`` filtered intervals that
  differ by ``difference_s`` or more, smoothed, over the RR trend (a fast irregular rhythm
  counts more than a slow one);
- bigeminy (every other beat premature, regular in its own way) changes the sum of the
  intervals the median filter sees; where it does not (below ``bigeminy_level``) the
  rhythm is taken as regular;
- an interval is in AF where that decision signal exceeds ``threshold``.

AF is an irregular rhythm *without P waves*, and the RR series alone cannot tell it from
an irregular rhythm with them (sinus arrhythmia, frequent atrial ectopy, wandering
pacemaker). So where the beats' windows reach back far enough, the P waves are looked at
too (:func:`p_wave_consistency`): each beat's stretch before the QRS, low-passed to a P
wave's frequencies (:func:`p_wave_band`), is correlated with the median of its
neighbours'; a sinus P wave repeats from beat to beat, fibrillatory waves do not. The
rhythm is AF only where this consistency, averaged over :data:`P_WAVE_SMOOTHING` beats,
is below ``p_wave_consistency``. (Atrial flutter's
regular F waves repeat like P waves: a flutter with a regular block is missed by both
tests, and one with a varying block by this one.)

What this package adds, for Holter recordings whose patients have frequent ventricular
ectopy (their irregular RR series otherwise reads as AF):

- beats not of the recording's dominant shape (``ectopic``: ventricular beats by their
  shape) are left out of the RR series with both their intervals. Where fewer than
  half the intervals around a beat are left (``min_kept_share``, over ``share_window``
  intervals), what is left cannot tell alone: the rhythm is AF there only where the
  intervals left are irregular and the P waves were looked at and are clearly missing
  (consistency below ``sparse_p_wave_consistency``, 0.15 against 0.5 elsewhere). AF with frequent beats of another shape (aberrant conduction,
  multiform ectopy: MIT-BIH 203, where this found 28 of its 30 AF minutes instead of 20)
  is then found, and a sinus rhythm broken up by frequent PVCs, whose P waves are
  interrupted but there (MIT-BIH 200, consistency around 0.44), is not. The limit was
  chosen on MIT-BIH, the only AF database at hand: the lowest that kept 200's false AF
  minutes at 360 Hz where they were (``scripts/benchmark_rhythm.py``). Without P waves
  to look at, the rhythm is not called AF there;
- intervals touching an unreadable beat are never AF, so the burden counts analysable
  time only;
- stretches of AF at most ``join_gap_s`` apart are one episode, and an episode lasts at
  least ``min_episode_s`` (30 s, the clinical definition of an AF episode): shorter
  irregular stretches are left to the ectopy counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..recordings.signals import runs
from .episodes import Episode, join_close
from ..recordings.patient import unit_rows
from .windows import window_slice

#: The kind of the episodes this module finds.
ATRIAL_FIBRILLATION = "atrial fibrillation"
#: Where a beat's P wave is, relative to its R peak (seconds).
P_WAVE_START_S, P_WAVE_STOP_S = -0.23, -0.07
#: The highest frequency of a P wave looked at (Hz): a P wave's own are below it, muscle
#: noise's mostly above. Measured at 10 and 15 Hz against none on MIT-BIH
#: (``scripts/benchmark_rhythm.py``): 10 Hz lost a third of the AF found, 15 Hz lost none
#: and found less false AF, in noise and without.
P_WAVE_BAND_HZ = 15.0
#: How many beats on each side a beat's P wave is compared with.
P_WAVE_NEIGHBOURS = 8
#: Over how many beats the P waves' consistency is averaged.
P_WAVE_SMOOTHING = 31
_P_WAVE_BLOCK = 4096


@dataclass(frozen=True)
class AfParameters:
    """The detector's parameters: Petrėnas et al.'s (``alpha``, ``window``,
    ``difference_s``, ``bigeminy_level``, ``threshold``) and this package's ectopy and
    episode rules (see the module's docstring)."""

    alpha: float = 0.02
    window: int = 8
    difference_s: float = 0.03
    bigeminy_level: float = 2e-4
    threshold: float = 0.725
    min_kept_share: float = 0.5
    share_window: int = 31
    min_episode_s: float = 30.0
    join_gap_s: float = 10.0
    p_wave_consistency: float = 0.5
    sparse_p_wave_consistency: float = 0.15


@dataclass(frozen=True)
class AtrialFibrillation:
    """The AF a recording's beats show.

    Attributes
    ----------
    in_af : ndarray of bool, shape (n,)
        Per beat: the interval that ends at it is in an AF episode (the first beat takes
        its next interval's state). Inside AF a beat's timing says nothing about it.
    episodes : tuple of Episode
        In time order, each at least ``min_episode_s`` long.
    """

    in_af: np.ndarray
    episodes: tuple[Episode, ...]

    @property
    def seconds(self) -> float:
        """The time in AF: the episodes' durations added up."""
        return float(sum(episode.duration_s for episode in self.episodes))

    def burden(self, analysable_s: float) -> float:
        """The share of ``analysable_s`` seconds spent in AF (0 when nothing was
        analysable)."""
        return min(1.0, self.seconds / analysable_s) if analysable_s > 0 else 0.0


def atrial_fibrillation(times_s, *, ectopic=None, readable=None, consistency=None,
                        parameters: AfParameters = AfParameters()) -> AtrialFibrillation:
    """The atrial fibrillation episodes of a recording's beats.

    Parameters
    ----------
    times_s : array-like, shape (n,)
        The beats' R-peak times in seconds, increasing.
    ectopic : array-like of bool, shape (n,), optional
        Beats not of the recording's dominant shape (left out of the RR series).
    readable : array-like of bool, shape (n,), optional
        False for beats of a stretch that could not be read.
    consistency : array-like, shape (n,), optional
        Per beat, the consistency of the P waves around it (:func:`p_wave_consistency`);
        without it the RR series alone decides, and a stretch with too few intervals
        left is never AF.
    parameters : AfParameters

    Returns
    -------
    AtrialFibrillation
    """
    times = np.asarray(times_s, dtype=np.float64)
    count = len(times)
    ectopic = np.zeros(count, bool) if ectopic is None else np.asarray(ectopic, dtype=bool)
    readable = np.ones(count, bool) if readable is None else np.asarray(readable, dtype=bool)
    if ectopic.shape != times.shape or readable.shape != times.shape:
        raise ValueError(f"expected one ectopic and one readable flag per beat ({count} "
                         f"beats), got {ectopic.shape[0]} and {readable.shape[0]}")
    if consistency is not None:
        consistency = np.asarray(consistency, dtype=np.float64)
        if consistency.shape != times.shape:
            raise ValueError(f"expected one P-wave consistency per beat ({count} beats), "
                             f"got {consistency.size}")
    if np.any(np.diff(times) <= 0):
        raise ValueError("the beats' times must increase")
    intervals = np.diff(times)
    usable = readable[:-1] & readable[1:]
    kept = usable & ~ectopic[:-1] & ~ectopic[1:]
    in_af = np.zeros(len(intervals), bool)
    if kept.sum() >= 2 * parameters.window:
        decided = _petrenas(intervals[kept], parameters)
        # An interval left out takes the decision of the nearest kept one before it (those
        # before the first kept one take its decision).
        in_af = decided[np.clip(np.cumsum(kept) - 1, 0, None)] & usable
        sparse = _centred_mean(kept, parameters.share_window) < parameters.min_kept_share
        if consistency is None:
            in_af &= ~sparse
        else:
            in_af &= ~(consistency[1:] >= parameters.p_wave_consistency)
            # Where too few intervals are left, only P waves looked at and clearly
            # missing tell (NaN: not looked at).
            in_af &= ~sparse | (consistency[1:] < parameters.sparse_p_wave_consistency)
    # Runs of AF intervals a few seconds apart (an unreadable beat, an interval left out
    # between them) are one episode; then the shortest are dropped. A run of intervals
    # first..stop - 1 spans beats first..stop.
    joined = join_close(runs(in_af), times, parameters.join_gap_s)
    in_af[:] = False
    episodes = []
    for first, stop in joined:
        start_s, end_s = float(times[first]), float(times[stop])
        if end_s - start_s >= parameters.min_episode_s:
            episodes.append(Episode(ATRIAL_FIBRILLATION, start_s, end_s))
            in_af[first:stop] = usable[first:stop]
    per_beat = np.concatenate([in_af[:1], in_af]) if len(in_af) else np.zeros(count, bool)
    return AtrialFibrillation(per_beat, tuple(episodes))


def p_wave_slice(before_s: float, after_s: float, samples: int) -> slice:
    """Which of a beat window's ``samples`` values are its P wave; ValueError when the
    window does not reach back that far."""
    return window_slice(before_s, after_s, samples, start_s=P_WAVE_START_S,
                        stop_s=P_WAVE_STOP_S, what="a P wave")


def p_wave_band(windows: np.ndarray, fs: float) -> np.ndarray:
    """Beat windows (one a row, ``fs`` values a second) low-passed to
    :data:`P_WAVE_BAND_HZ`, zero phase: a P wave's frequencies, without the muscle noise
    above them, which makes sinus P waves look unlike each other."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(2, min(P_WAVE_BAND_HZ, 0.45 * fs), btype="lowpass", fs=fs, output="sos")
    return sosfiltfilt(sos, np.asarray(windows, dtype=np.float64), axis=1)


def p_wave_consistency(waves: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """How alike the P waves around each beat are: the correlation of a beat's P wave
    (``waves``, shape ``(n, m)``: its window's values in :func:`p_wave_slice`) with the
    median of its :data:`P_WAVE_NEIGHBOURS` usable neighbours' on each side, averaged
    over :data:`P_WAVE_SMOOTHING` usable beats.

    Near 1 in sinus rhythm, near 0 in atrial fibrillation. Beats not ``usable`` (ectopic
    beats, which have no P wave of their own, and unreadable ones) take the value of the
    nearest usable beat before them; NaN everywhere when no beat is usable.
    """
    usable = np.flatnonzero(np.asarray(usable, dtype=bool))
    count = len(waves)
    if len(usable) == 0:
        return np.full(count, np.nan)
    waves = unit_rows(np.asarray(waves, dtype=np.float64)[usable])
    offsets = np.concatenate([np.arange(-P_WAVE_NEIGHBOURS, 0),
                              np.arange(1, P_WAVE_NEIGHBOURS + 1)])
    alike = np.empty(len(usable))
    for start in range(0, len(usable), _P_WAVE_BLOCK):  # (block, 16, width) at a time
        rows = np.arange(start, min(start + _P_WAVE_BLOCK, len(usable)))
        neighbours = np.clip(rows[:, None] + offsets, 0, len(usable) - 1)
        typical = unit_rows(np.median(waves[neighbours], axis=1))
        alike[rows] = np.einsum("ij,ij->i", waves[rows], typical)
    smoothed = _centred_mean(alike, P_WAVE_SMOOTHING)
    nearest = np.clip(np.searchsorted(usable, np.arange(count), side="right") - 1, 0, None)
    return smoothed[nearest]


def _petrenas(intervals: np.ndarray, parameters: AfParameters) -> np.ndarray:
    """Petrėnas et al.'s decision for each interval of an RR series (seconds)."""
    from scipy.ndimage import median_filter

    window = parameters.window
    filtered = median_filter(intervals, size=3, mode="nearest")
    trend = _forward_backward_mean(intervals, parameters.alpha)
    # Each interval's window: itself and the window - 1 before it (the first intervals
    # repeat the first one, which adds no differing pair).
    recent = sliding_window_view(np.concatenate([np.full(window - 1, filtered[0]), filtered]),
                                 window)
    differing = np.abs(recent[:, :, None] - recent[:, None, :]) >= parameters.difference_s
    pairs = window * (window - 1)
    irregularity = _forward_backward_mean(differing.sum(axis=(1, 2)) / pairs,
                                          parameters.alpha) / trend
    raw = sliding_window_view(np.concatenate([np.full(window - 1, intervals[0]), intervals]),
                              window)
    bigeminy = _forward_backward_mean((recent.sum(axis=1) / raw.sum(axis=1) - 1.0) ** 2,
                                      parameters.alpha)
    decision = np.where(bigeminy >= parameters.bigeminy_level, irregularity, bigeminy)
    return decision > parameters.threshold


def _forward_backward_mean(values: np.ndarray, alpha: float) -> np.ndarray:
    """The exponential average ``y[n] = (1 - alpha) y[n-1] + alpha x[n]`` run forwards
    and backwards (no delay), each pass starting from the mean of its first ``1 / alpha``
    values (the average's memory).

    Started from its first value alone, the average took about ``1 / alpha`` intervals to
    forget it: a span that opens in atrial fibrillation, whose first window of intervals
    is not yet irregular, was read as sinus rhythm for its first 30 to 70 seconds (MIT-BIH
    203 and 221 scored from 5:00, in AF throughout: AF from 5:26 and 6:12).
    """
    from scipy.signal import lfilter

    values = np.asarray(values, dtype=np.float64)
    memory = max(1, min(len(values), int(round(1.0 / alpha))))
    numerator, denominator = [alpha], [1.0, alpha - 1.0]

    def forwards(series: np.ndarray) -> np.ndarray:
        start = [(1.0 - alpha) * series[:memory].mean()]
        return lfilter(numerator, denominator, series, zi=start)[0]

    return forwards(forwards(values)[::-1])[::-1] if len(values) else values


def _centred_mean(flags: np.ndarray, width: int) -> np.ndarray:
    """The mean of the values (true as 1) in a window of ``width`` centred on each
    position (near the ends, and in a series shorter than the window, of the part of the
    window inside the series)."""
    values = np.asarray(flags, dtype=np.float64)
    count, half = len(values), width // 2
    sums = np.concatenate([[0.0], np.cumsum(values)])
    positions = np.arange(count)
    low = np.clip(positions - half, 0, count)
    high = np.clip(positions - half + width, 0, count)
    return (sums[high] - sums[low]) / np.maximum(high - low, 1)
