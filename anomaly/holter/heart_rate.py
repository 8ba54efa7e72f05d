"""The heart rate over a recording and the standard time-domain heart-rate variability.

Both come from **normal-to-normal (NN) intervals**: the interval between two consecutive
beats that are both normal (of normal shape, on time, readable: see
:mod:`anomaly.holter.analysis`), and at most :data:`MAX_NN_SECONDS` long. An interval next
to an ectopic beat says nothing about the sinus node; a longer one is a pause (an event
of its own) or hides beats that were not found.

- The beat-to-beat rate is ``60 / NN`` per NN interval; the rate of each minute of the
  recording is ``60 / mean NN`` over the NN intervals ending in it, given only when they
  add up to at least :data:`MIN_MINUTE_SECONDS` (a minute mostly ectopic, unreadable or
  past the end has none). The minimum and maximum are of these per-minute rates, as Holter
  reports give them (a single short interval is not a heart rate), with their minute.
- Beside it, the rate of **every beat** each minute, as a Holter summary gives the heart
  rate: from the intervals between two readable beats whatever their kind, at most
  :data:`MAX_EVERY_BEAT_SECONDS` long (a pause counts; a gap of unread lead does not).
  In a minute of frequent ectopy the NN rate is missing or says the sinus node's (MIT-BIH
  208: 10 of its 30 minutes without an NN rate, 90-98 beats a minute in them).
- SDNN is the standard deviation of the NN intervals; RMSSD the root mean square of the
  differences between successive NN intervals, and pNN50 the share of those differences
  over 50 ms, where *successive* means sharing a beat (two NN intervals with an ectopic
  beat between them are not successive). These are the Task Force's (1996) definitions,
  and what ``neurokit2.hrv_time`` computes from a series of NN intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..recordings.quality import MAX_PAUSE_SECONDS

#: The length of one point of the heart-rate trend.
TREND_SECONDS = 60.0
#: The longest NN interval (20 bpm).
MAX_NN_SECONDS = 3.0
#: The least NN time in a minute for the minute to have a rate.
MIN_MINUTE_SECONDS = 10.0
#: The longest interval the rate of every beat counts: a pause, not a gap in the beats
#: read (the longest quiet stretch read as a pause).
MAX_EVERY_BEAT_SECONDS = MAX_PAUSE_SECONDS
#: The sinus NN intervals a variability given in the one-line summary rests on at least:
#: 4 minutes, the Task Force's (1996) short-term recording of 5 minutes less the intervals
#: an ectopic beat or a gap takes out (MIT-BIH 100's first 5 minutes hold 4 min 52 s).
#: Less is given in the report's table with its count, not in the summary.
MIN_VARIABILITY_SECONDS = 240.0


@dataclass(frozen=True)
class MinuteRates:
    """The rate of each minute of a recording from some of its intervals, and its lowest,
    mean and highest.

    Attributes
    ----------
    per_minute_bpm : ndarray, shape (m,)
        60 over the mean of the intervals ending in each minute (NaN where they add up to
        less than :data:`MIN_MINUTE_SECONDS`).
    minimum_bpm, mean_bpm, maximum_bpm : float
        The lowest and highest per-minute rates, and 60 over the mean interval (NaN
        without intervals).
    minimum_at_s, maximum_at_s : float
        The start of the minute of the lowest and highest rates (NaN without them).
    """

    per_minute_bpm: np.ndarray
    minimum_bpm: float
    minimum_at_s: float
    mean_bpm: float
    maximum_bpm: float
    maximum_at_s: float


def mean_rate(intervals: np.ndarray) -> float:
    """60 over the mean of ``intervals`` (seconds): beats per minute; NaN without any."""
    return 60.0 / float(np.mean(intervals)) if len(intervals) else float("nan")


def rates_per_period(intervals: np.ndarray, ends: np.ndarray, starts: np.ndarray,
                     period_s: float = TREND_SECONDS) -> np.ndarray:
    """60 over the mean of the ``intervals`` (seconds) ending (at ``ends``) in each period
    of ``period_s`` seconds from ``starts[0]`` (``len(starts)`` periods; a later end counts
    in the last), NaN where they add up to less than :data:`MIN_MINUTE_SECONDS`."""
    periods = len(starts)
    period = np.clip(((ends - starts[0]) // period_s).astype(int), 0, periods - 1)
    return rates_in(intervals, period, periods)


def rates_in(intervals: np.ndarray, period: np.ndarray, periods: int) -> np.ndarray:
    """60 over the mean of the ``intervals`` (seconds) in each of ``periods`` periods, the
    ``period`` each is in; NaN where they add up to less than :data:`MIN_MINUTE_SECONDS`."""
    totals = np.bincount(period, weights=intervals, minlength=periods)
    counts = np.bincount(period, minlength=periods)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(totals >= MIN_MINUTE_SECONDS, 60.0 * counts / totals, np.nan)


def minute_rates(intervals: np.ndarray, ends: np.ndarray, starts: np.ndarray) -> MinuteRates:
    """The :class:`MinuteRates` of ``intervals`` (seconds) ending at ``ends`` (seconds),
    over the minutes starting at ``starts``."""
    per_minute = rates_per_period(intervals, ends, starts)
    known = np.isfinite(per_minute).any()
    lowest = int(np.nanargmin(per_minute)) if known else None
    highest = int(np.nanargmax(per_minute)) if known else None
    nan = float("nan")
    return MinuteRates(
        per_minute_bpm=per_minute,
        minimum_bpm=nan if lowest is None else float(per_minute[lowest]),
        minimum_at_s=nan if lowest is None else float(starts[lowest]),
        mean_bpm=mean_rate(intervals),
        maximum_bpm=nan if highest is None else float(per_minute[highest]),
        maximum_at_s=nan if highest is None else float(starts[highest]))


@dataclass(frozen=True)
class HeartRate:
    """The heart rate of a recording.

    Attributes
    ----------
    nn_count : int
        The NN intervals found.
    sinus_nn_count : int
        Of them, those of sinus rhythm: the intervals the variability is computed from.
    sinus_nn_seconds : float
        Their total length.
    minute_start_s : ndarray, shape (m,)
        The start of each minute of the trend (seconds from the recording's start; the
        first is the span's start).
    nn : MinuteRates
        The rate of each minute from its NN intervals (NaN in a minute without them),
        its lowest and highest, and the rate of the mean NN interval.
    every_beat : MinuteRates
        The rate of every readable beat, minute by minute (see the module's docstring).
    sdnn_ms, rmssd_ms, pnn50 : float
        Time-domain variability (NaN with fewer than two NN intervals, or two successive
        ones; pNN50 as a share, 0 to 1).
    """

    nn_count: int
    sinus_nn_count: int
    sinus_nn_seconds: float
    minute_start_s: np.ndarray
    nn: MinuteRates
    every_beat: MinuteRates
    sdnn_ms: float
    rmssd_ms: float
    pnn50: float

    @property
    def variability_is_short(self) -> bool:
        """Whether the variability rests on less than :data:`MIN_VARIABILITY_SECONDS` of sinus
        NN intervals: too little to give in a one-line summary (a recording in atrial
        fibrillation throughout has a few such intervals at most)."""
        return self.sinus_nn_seconds < MIN_VARIABILITY_SECONDS


def nn_pairs(times: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Which intervals between consecutive beats at ``times`` (seconds) are NN intervals:
    both beats ``normal``, at most :data:`MAX_NN_SECONDS` apart."""
    return normal[:-1] & normal[1:] & (np.diff(times) <= MAX_NN_SECONDS)


def nn_intervals(times_s, normal) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The NN intervals of beats at ``times_s`` (seconds), ``normal`` per beat: their
    lengths (seconds), the times they end at, and whether each follows the previous one
    directly (shares its first beat with the previous one's last)."""
    times = np.asarray(times_s, dtype=np.float64)
    normal = np.asarray(normal, dtype=bool)
    if times.shape != normal.shape:
        raise ValueError(f"expected one normal flag per beat ({len(times)} beats), got "
                         f"{len(normal)}")
    ends = np.flatnonzero(nn_pairs(times, normal)) + 1
    successive = np.concatenate([[False], np.diff(ends) == 1]) if len(ends) else np.zeros(0, bool)
    return times[ends] - times[ends - 1], times[ends], successive


def heart_rate(times_s, normal, *, sinus=None, readable=None, start_s: float = 0.0,
               end_s: float | None = None) -> HeartRate:
    """The heart rate and its variability.

    Parameters
    ----------
    times_s : array-like, shape (n,)
        The beats' R-peak times, seconds from the recording's start, increasing.
    normal : array-like of bool, shape (n,)
        The beats that count (see the module's docstring).
    sinus : array-like of bool, shape (n,), optional
        The beats of sinus rhythm (default: all). The variability is of the NN intervals
        whose beats are both also sinus: heart-rate variability describes the sinus
        node, and in atrial fibrillation the intervals are irregular whatever it does.
    readable : array-like of bool, shape (n,), optional
        The beats that could be read (default: all), whose intervals give the rate of
        every beat.
    start_s, end_s : float
        The span the minute-by-minute trend covers (default: from 0 to the last beat).

    Returns
    -------
    HeartRate
    """
    intervals, ends, successive = nn_intervals(times_s, normal)
    if sinus is None:
        variable, joined = intervals, successive
    else:
        variable, _, joined = nn_intervals(times_s, np.asarray(normal, dtype=bool)
                                           & np.asarray(sinus, dtype=bool))
    times = np.asarray(times_s, dtype=np.float64)
    read = np.ones(len(times), bool) if readable is None else np.asarray(readable, bool)
    between = read[:-1] & read[1:] & (np.diff(times) <= MAX_EVERY_BEAT_SECONDS)
    every_ends = times[1:][between]
    every = every_ends - times[:-1][between]
    last = end_s if end_s is not None else (float(times[-1]) if len(times) else start_s)
    minutes = max(1, int(np.ceil((last - start_s) / TREND_SECONDS)))
    starts = start_s + np.arange(minutes) * TREND_SECONDS
    differences = np.diff(variable)[joined[1:]] if len(variable) > 1 else np.zeros(0)
    nan = float("nan")
    return HeartRate(
        nn_count=len(intervals),
        sinus_nn_count=len(variable),
        sinus_nn_seconds=float(variable.sum()),
        minute_start_s=starts,
        nn=minute_rates(intervals, ends, starts),
        every_beat=minute_rates(every, every_ends, starts),
        sdnn_ms=1000.0 * float(variable.std(ddof=1)) if len(variable) > 1 else nan,
        rmssd_ms=1000.0 * float(np.sqrt(np.mean(differences ** 2))) if len(differences) else nan,
        pnn50=float(np.mean(np.abs(differences) > 0.050)) if len(differences) else nan,
    )
