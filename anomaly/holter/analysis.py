"""A recording's beats read as a Holter reader reads them: morphology families, which
beats are normal, atrial fibrillation and the heart rate.

The beats are those :mod:`anomaly.recordings.segment` found, cut with
:data:`ANALYSIS_WINDOW` whatever window a model scores them with: it reaches back to the
P wave. Of each beat only what the analysis looks at is kept (:class:`RhythmBeats`: its
time, whether it is on time and readable, its usual RR interval, and its shape and its
P wave in float32), so that a day's recording is analysed in tens of megabytes. A beat
is **normal** when it can be read, is of a family of normal shape (:mod:`.families`)
and comes on time (not premature, nor in a supraventricular run:
:func:`premature_beats`), or comes in atrial fibrillation (where no beat is on time and a
normally conducted one is still normal). A beat of a family of ectopic shape counts as
ventricular in the rhythm events, except in atrial fibrillation when its family's
complex is less than :data:`WIDER_IN_AF` times as wide as the dominant one's: a narrow
beat of another shape there is taken as conducted; and except in a run of
:data:`NARROW_RUN` or more such beats none of them that wide, anywhere: a ventricular
tachycardia is a wide-complex tachycardia, and a narrow run conducted (MIT-BIH 222's
atrial flutter read as VT); nor in such a run whose beats are each the only one of
their family (false detections in noise).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np

from ..recordings.rhythm import rr_ratios
from ..recordings.segment import BeatWindow
from ..recordings.signals import runs
from .atrial import (AfParameters, AtrialFibrillation, atrial_fibrillation, p_wave_band,
                     p_wave_consistency, p_wave_slice)
from .events import Event, EventLimits, beat_kinds, rhythm_events
from .families import ON_TIME_RATIO, WIDE, Families, beat_families, shape_slice
from .heart_rate import HeartRate, heart_rate
from .windows import values_per_second

if TYPE_CHECKING:
    from ..recordings.quality import Analysable
    from ..recordings.segment import RecordingBeats, SegmentOptions

#: How beats are cut for the analysis: 0.25 s before the R peak (the P wave) to 0.45 s
#: after, 140 values, z-normalised (shapes are compared by correlation).
ANALYSIS_WINDOW = BeatWindow()
_SHAPE = shape_slice(ANALYSIS_WINDOW.before, ANALYSIS_WINDOW.after, ANALYSIS_WINDOW.samples)
_P_WAVE = p_wave_slice(ANALYSIS_WINDOW.before, ANALYSIS_WINDOW.after, ANALYSIS_WINDOW.samples)
#: In atrial fibrillation, how much wider than the dominant family's complex a family of
#: ectopic shape must be for its beats to count as ventricular: wide
#: (:data:`.families.WIDE`).
WIDER_IN_AF = WIDE
#: A run of this many beats of ectopic shape, none of them :data:`WIDER_IN_AF` times as
#: wide as the dominant family, is conducted, not ventricular (a run's length, in
#: :mod:`.events`). Measured on MIT-BIH with ``scripts/benchmark_rhythm.py``
#: (docs/benchmarks.md): VT +P 0.600 to 0.638 at 360 Hz, no VT episode lost.
NARROW_RUN = 3
#: Values a second of a beat cut by :data:`ANALYSIS_WINDOW`.
_WINDOW_FS = values_per_second(ANALYSIS_WINDOW.before, ANALYSIS_WINDOW.after,
                               ANALYSIS_WINDOW.samples)


@dataclass(frozen=True)
class RhythmBeats:
    """What the analysis needs of a recording's beats (``n`` of them, in time order):
    ``sample`` (R peaks), ``time_s``, ``on_time`` (not premature), ``usual_rr_s`` (the
    usual RR interval it is judged against, in seconds: the segment's ``rr_local_mean_s``,
    the mean of the last RR intervals with its own, NaN before any), ``readable``, and
    ``shapes`` and ``p_waves``, each beat's values in those parts of
    :data:`ANALYSIS_WINDOW` (shape ``(n, m)``)."""

    sample: np.ndarray
    time_s: np.ndarray
    on_time: np.ndarray
    usual_rr_s: np.ndarray
    readable: np.ndarray
    shapes: np.ndarray
    p_waves: np.ndarray

    @classmethod
    def of(cls, beats: "RecordingBeats") -> "RhythmBeats":
        """The parts of beats cut with :data:`ANALYSIS_WINDOW`."""
        if beats.values.shape[1] != ANALYSIS_WINDOW.samples:
            raise ValueError(f"expected beats of {ANALYSIS_WINDOW.samples} values (the "
                             f"analysis window), got {beats.values.shape[1]}")
        on_time = rr_ratios(beats.rr_prev, beats.rr_next, beats.rr_local_mean)[:, 0] \
            >= ON_TIME_RATIO
        return cls(beats.sample, beats.time_s, on_time, beats.rr_local_mean, beats.readable,
                   beats.values[:, _SHAPE].astype(np.float32),
                   p_wave_band(beats.values, _WINDOW_FS)[:, _P_WAVE].astype(np.float32))

    @classmethod
    def join(cls, parts: list["RhythmBeats"]) -> "RhythmBeats":
        """Consecutive parts of a recording's beats (its chunks') as one."""
        return cls(*(np.concatenate([getattr(part, field.name) for part in parts])
                     for field in fields(cls)))


def read_rhythm_beats(path: str | os.PathLike, segment: "SegmentOptions"
                      ) -> tuple[RhythmBeats, tuple[float, float], "Analysable"]:
    """The beats of a recording's span as ``segment`` finds them (its lead, span and
    rate), cut with :data:`ANALYSIS_WINDOW`, read a chunk at a time; where the span
    starts and ends (seconds from the recording's start); and how much of it could be
    read."""
    from ..recordings.quality import Analysable
    from ..recordings.reading import segmenter_for
    from ..recordings.segment import SegmentCounts

    segmenter = segmenter_for(path, replace(segment, window=ANALYSIS_WINDOW, annotations=None))
    parts, counts = [], SegmentCounts()
    for chunk in segmenter.chunks():
        counts += chunk.counts
        if chunk.beats is not None:
            parts.append(RhythmBeats.of(chunk.beats))
    fs = segmenter.lead.fs
    return (RhythmBeats.join(parts), (segmenter.start / fs, segmenter.stop / fs),
            Analysable.of(counts, fs, segmenter.lead.started))


#: A fit's training span at least this much in atrial fibrillation is said to be so: the
#: model learns that irregular rhythm as the patient's normal one (``anomaly fit``).
AF_TRAINING_SHARE = 0.5


@dataclass(frozen=True)
class SpanFibrillation:
    """How much of a recording's span is in atrial fibrillation: ``seconds`` of the
    ``analysable_s`` seconds that could be read."""

    seconds: float
    analysable_s: float

    @property
    def mostly(self) -> bool:
        """Whether the span is in AF for at least :data:`AF_TRAINING_SHARE` of it, and for
        an AF episode's shortest length at least (a model directory's edited figures of
        under a second read "0 s of the 0 s trained on is atrial fibrillation")."""
        return (self.seconds >= AfParameters().min_episode_s
                and self.seconds >= AF_TRAINING_SHARE * self.analysable_s)

    def training_note(self, timing: bool, report: str = "its report") -> str:
        """What a model trained on the span learned, where it is :attr:`mostly` AF (the
        fit's warning, and the ``report`` of a run with the model: ``"this report"``):
        ``timing``, whether it learned the beats' timing (the RR context) beside their
        shape."""
        from ..recordings.times import format_duration

        learned = "each beat's timing and shape" if timing else "each beat's shape"
        return (f"{format_duration(self.seconds)} of the "
                f"{format_duration(self.analysable_s)} trained on is atrial fibrillation; "
                f"the model learns {learned} in it as this patient's normal, and is likely "
                "to flag many normal beats (on the MIT-BIH records that open in AF, 800 to "
                f"1,200 an hour): read {report} by morphology families and rhythm events "
                "rather than beat by beat")


def span_fibrillation(path: str | os.PathLike, segment: "SegmentOptions") -> SpanFibrillation:
    """The atrial fibrillation of a recording's span as ``segment`` reads it, found as the
    rhythm analysis finds it (:func:`analyse_beats`); its seconds at most those read (an
    episode joined across a short unreadable stretch spans it: a span in AF throughout
    read "2 min 59 s of the 2 min 53 s")."""
    beats, span, analysable = read_rhythm_beats(path, segment)
    seconds = analyse_beats(beats, span_s=span).atrial_fibrillation.seconds \
        if len(beats.time_s) else 0.0
    return SpanFibrillation(min(seconds, analysable.seconds), analysable.seconds)


@dataclass(frozen=True)
class RhythmAnalysis:
    """What :func:`analyse_beats` found; ``normal``, ``kinds`` (:func:`.events.beat_kinds`)
    and ``p_wave_consistency`` (of the P waves around it) per beat, and the rhythm events
    in time order."""

    families: Families
    atrial_fibrillation: AtrialFibrillation
    normal: np.ndarray
    heart_rate: HeartRate
    p_wave_consistency: np.ndarray
    kinds: np.ndarray
    events: tuple[Event, ...]


def premature_beats(beats: RhythmBeats,
                    tachycardia_bpm: float = EventLimits.tachycardia_bpm) -> np.ndarray:
    """Which beats are premature: not on time (:attr:`RhythmBeats.on_time`) in a stretch
    that began abruptly, or in a supraventricular run that went on past them.

    A beat comes abruptly when its interval is under :data:`ON_TIME_RATIO` of the
    interval before it, as an ectopic beat's is. The beats of a stretch not on time before
    its first abrupt one are the sinus rate speeding up, with the breath (sinus
    arrhythmia) or gradually, early only against the mean of the intervals before them
    (MIT-BIH 113, 115 and 123: some 180 normal beats each called supraventricular); an
    ectopic beat or a run may begin within the stretch, at the fast phase of the breath.

    A run of premature beats goes on when it began abruptly and the interval before it
    was not late against the usual one, while the intervals stay a tachycardia's
    (``tachycardia_bpm`` or faster) and under :data:`ON_TIME_RATIO` of the usual interval
    before the run, and the beats readable. Within a supraventricular tachycardia the
    usual interval (a mean of the last ones) soon becomes the run's own, and its later
    beats would read as on time (MIT-BIH 209's runs were found for 22 s of their 102). A
    sinus rhythm back after a block, or after a pause, began late; a sinus tachycardia
    speeds up gradually.

    Parameters
    ----------
    beats : RhythmBeats
    tachycardia_bpm : float, default :attr:`.events.EventLimits.tachycardia_bpm`

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    premature = ~np.asarray(beats.on_time, bool)
    interval = np.diff(beats.time_s, prepend=np.nan)
    readable = np.asarray(beats.readable, bool)
    abrupt = np.r_[False, interval[1:] < ON_TIME_RATIO * interval[:-1]]
    for first, stop in runs(premature):
        # The stretch's beats before its first abrupt one are the sinus rate's; an
        # ectopic beat or a run may start within it, at the fast phase of the breath.
        onset = first + int(np.argmax(abrupt[first:stop])) if abrupt[first:stop].any() \
            else stop
        premature[first:onset] = False
        if onset == stop:
            continue
        usual = beats.usual_rr_s[onset - 1]  # onset >= 1: the first beat is not abrupt
        if not (np.isfinite(usual) and interval[onset - 1] <= usual / ON_TIME_RATIO):
            continue
        index = stop
        while index < len(premature) and readable[index] \
                and interval[index] < ON_TIME_RATIO * usual \
                and interval[index] <= 60.0 / tachycardia_bpm:
            premature[index] = True
            index += 1
    return premature


def analyse_beats(beats: RhythmBeats, *, span_s: tuple[float, float] | None = None,
                  flutter: tuple[tuple[float, float], ...] = ()) -> RhythmAnalysis:
    """Families, atrial fibrillation, normal beats, heart rate and rhythm events of a
    recording's beats; the heart-rate trend covers ``span_s`` (start and end, seconds from
    the recording's start; default: from 0 to the last beat); ``flutter``: the stretches
    of ventricular flutter or fibrillation (from and to, seconds), each an event
    (:meth:`anomaly.recordings.quality.Analysable.flutter`)."""
    readable = beats.readable
    families = beat_families(beats.shapes, beats.on_time, readable=readable)
    ectopic = families.ectopic
    consistency = p_wave_consistency(beats.p_waves, readable & ~ectopic)
    fibrillation = atrial_fibrillation(beats.time_s, ectopic=ectopic, readable=readable,
                                       consistency=consistency)
    premature = premature_beats(beats)
    normal = readable & ~ectopic & (~premature | fibrillation.in_af)
    start_s, end_s = (0.0, None) if span_s is None else span_s
    rate = heart_rate(beats.time_s, normal, sinus=~fibrillation.in_af, readable=readable,
                      start_s=start_s, end_s=end_s)
    # In AF a family of ectopic shape counts as ventricular only when it is wider than
    # the dominant one: there, conducted beats come at every interval, and F waves or a
    # partly aberrant conduction give some another shape, narrow still (MIT-BIH 203, 222).
    wide = families.wider_than_dominant(WIDER_IN_AF)
    ventricular = ectopic & (~fibrillation.in_af | wide)
    # Nor is a run whose beats are each the only one of their family: false detections
    # in noise (MIT-BIH 228 at 4:41), where a tachycardia repeats a shape.
    alone = families.alone
    for first, stop in runs(ventricular):
        if stop - first >= NARROW_RUN and (not wide[first:stop].any()
                                           or alone[first:stop].all()):
            ventricular[first:stop] = False
    kinds = beat_kinds(ventricular, premature, readable, fibrillation.in_af)
    events = tuple(rhythm_events(beats.time_s, kinds, flutter=flutter))
    return RhythmAnalysis(families, fibrillation, normal, rate, consistency, kinds, events)
