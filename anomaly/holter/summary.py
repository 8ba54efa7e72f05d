"""A scored recording's rhythm, as its report gives it: the heart rate, atrial
fibrillation with its burden, and the morphology families with their scores.

The beats are read again from the recording with the analysis window
(:func:`.analysis.read_rhythm_beats`: the same detector and span as scoring) and matched
to the scored ones by their R-peak sample. With a model whose window is shorter, a beat
at a span's edge may be read by one and not the other; a beat scoring did not see has
no score.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ..recordings.times import clock_span, format_duration, format_time
from .analysis import RhythmAnalysis, analyse_beats, read_rhythm_beats
from .events import (NORMAL, SUPRAVENTRICULAR, UNKNOWN, VENTRICULAR, reading_rank,
                     rounded_rate)
from .heart_rate import nn_intervals, rates_in

if TYPE_CHECKING:
    from ..recordings.quality import Analysable
    from ..recordings.times import RecordingStart
    from ..recordings.segment import SegmentOptions

#: Families listed in a report, JSON and HTML (the largest; the rest are counted together).
LISTED_FAMILIES = 20
#: Events listed in the JSON report, in time order (all are counted).
LISTED_EVENTS = 500
#: An event with an unreadable beat or stretch this close is said to be near noise: noise
#: the tests did not set aside around it may have made it (MIT-BIH 105's ventricular runs
#: in its noise), for its reader to weigh.
NEAR_UNREADABLE_SECONDS = 5.0


@dataclass(frozen=True)
class FamilySummary:
    """One morphology family: its ``beats``, their ``share`` of the beats with a family,
    their mean score and how many were flagged, whether it is the dominant family and
    whether it is of normal shape, and its most typical beat (``representative``, an
    index into the recording's beats)."""

    family: int
    beats: int
    share: float
    mean_score: float
    anomalies: int
    dominant: bool
    normal_shape: bool
    representative: int

    @property
    def kind(self) -> str:
        """``dominant``, ``normal shape`` or ``ectopic shape``."""
        return "dominant" if self.dominant else "normal shape" if self.normal_shape \
            else "ectopic shape"


@dataclass(frozen=True)
class RecordingRhythm:
    """The rhythm of one scored recording: the analysis, its families' scores, the
    analysable seconds the AF burden is a share of, its beats' times and R peaks
    (samples), and how much of the recording its reading found analysable."""

    analysis: RhythmAnalysis
    families: tuple[FamilySummary, ...]
    analysable_s: float
    times_s: np.ndarray
    samples: np.ndarray
    analysable: "Analysable | None" = None

    @property
    def started(self) -> "RecordingStart | None":
        """When the recording began, as its header says (None: it does not say)."""
        return None if self.analysable is None else self.analysable.started

    def time_of_day(self, seconds: float) -> str | None:
        """The time of day ``seconds`` into the recording (None: not known)."""
        return None if self.started is None else self.started.clock(seconds)

    @property
    def burden(self) -> float:
        """The share of the analysable time in atrial fibrillation."""
        return self.analysis.atrial_fibrillation.burden(self.analysable_s)

    def describe(self) -> str:
        """One line for the run's log: ``heart rate 52-118 bpm, mean 74 bpm, SDNN 112 ms;
        atrial fibrillation 9 min 28 s in 2 episodes (burden 33%); 7 families, 2 of ectopic
        shape (198 beats); events: ventricular couplet 3, pause 1``."""
        facts = dict(self.facts())
        rate, fibrillation = facts["heart rate"], facts["atrial fibrillation"]
        return "; ".join((
            "heart rate unknown (no normal-to-normal intervals)" if rate == "unknown"
            else f"heart rate {rate}",
            "no atrial fibrillation" if fibrillation == "none"
            else f"atrial fibrillation {fibrillation}",
            facts["morphology families"],
            "no events" if facts["events"] == "none" else f"events: {facts['events']}"))

    def facts(self) -> list[tuple[str, str]]:
        """The summary's facts, each named: ``heart rate`` (``52-118 bpm, mean 74 bpm,
        SDNN 112 ms``; ``108-108 bpm in the 2 of 5 minutes with a rate, mean 107 bpm``;
        the SDNN only from 4 minutes of sinus intervals, see
        :data:`.heart_rate.MIN_VARIABILITY_SECONDS`), ``atrial fibrillation`` (``9 min 28 s
        in 2 episodes (burden 33%)`` or ``none``), ``morphology families`` (``7 families, 2
        of ectopic shape (198 beats)``), ``events`` (``pause 1, ventricular couplet 3``, in
        :meth:`event_counts`'s order, or ``none``)."""
        rate = self.analysis.heart_rate
        nn = rate.nn
        if rate.nn_count == 0:
            heart = "unknown"
        else:
            # The extremes are of the minutes with a rate, the mean of every NN interval:
            # where few minutes have a rate it may lie outside them, so say how few.
            minutes, rated = len(nn.per_minute_bpm), int(np.isfinite(nn.per_minute_bpm).sum())
            extremes = ("" if math.isnan(nn.minimum_bpm) else
                        f"{nn.minimum_bpm:.0f}-{nn.maximum_bpm:.0f} bpm"
                        + (f" in the {rated} of {minutes} minutes with a rate"
                           if rated < minutes else "") + ", ")
            heart = (f"{extremes}mean {nn.mean_bpm:.0f} bpm"
                     + ("" if math.isnan(rate.sdnn_ms) or rate.variability_is_short
                        else f", SDNN {rate.sdnn_ms:.0f} ms"))
        fibrillation = self.analysis.atrial_fibrillation
        episodes = len(fibrillation.episodes)
        atrial = ("none" if not episodes else
                  f"{format_duration(fibrillation.seconds)} in {episodes} episode"
                  f"{'s' if episodes > 1 else ''} (burden {self.burden:.0%})")
        ectopic = [family for family in self.families if not family.normal_shape]
        families = self.analysis.families
        # Of ectopic shape but not counted ventricular: narrow, in AF or in a run
        # (analysis.WIDER_IN_AF, analysis.NARROW_RUN).
        conducted = int((families.ectopic & np.isin(self.analysis.kinds,
                                                    (NORMAL, SUPRAVENTRICULAR))).sum())
        shapes = (f"{len(families)} famil{'y' if len(families) == 1 else 'ies'}, "
                  f"{len(ectopic)} of ectopic shape "
                  f"({int(families.ectopic.sum())} beat"
                  f"{'' if int(families.ectopic.sum()) == 1 else 's'}"
                  + (f"; {conducted} of them narrow, in AF or in a run: counted as "
                     "conducted"
                     if conducted else "") + ")")
        events = ", ".join(f"{kind} {count}" for kind, count in self.event_counts().items())
        return [("heart rate", heart), ("atrial fibrillation", atrial),
                ("morphology families", shapes), ("events", events or "none")]

    def beat_counts(self) -> dict[str, int]:
        """Beats by kind: ``normal``, ``supraventricular``, ``ventricular``,
        ``unreadable``."""
        kinds = self.analysis.kinds
        return {name: int((kinds == kind).sum()) for name, kind in
                (("normal", NORMAL), ("supraventricular", SUPRAVENTRICULAR),
                 ("ventricular", VENTRICULAR), ("unreadable", UNKNOWN))}

    @cached_property
    def _unreadable_times(self) -> np.ndarray:
        """The unreadable beats' times, but those of ventricular flutter: a beat whose span
        from the beat before it to the beat after it (its window and RR intervals, which
        set a beat aside) meets a stretch of flutter."""
        unreadable = np.flatnonzero(self.analysis.kinds == UNKNOWN)
        times = self.times_s
        before = times[np.maximum(unreadable - 1, 0)]
        after = times[np.minimum(unreadable + 1, len(times) - 1)]
        flutter = () if self.analysable is None else self.analysable.flutter
        near = np.zeros(len(unreadable), bool)
        for start, end in flutter:
            near |= (before <= end) & (after >= start)
        return times[unreadable[~near]]

    def near_unreadable(self, event) -> bool:
        """Whether an unreadable beat, or a listed unreadable stretch (one without beats:
        a lead off), lies within :data:`NEAR_UNREADABLE_SECONDS` of ``event``: noise it may
        have been read from. Ventricular flutter is not noise: its beats and stretches do
        not count."""
        first = event.start_s - NEAR_UNREADABLE_SECONDS
        last = event.end_s + NEAR_UNREADABLE_SECONDS
        times = self._unreadable_times
        if np.searchsorted(times, first, side="left") < np.searchsorted(times, last,
                                                                         side="right"):
            return True
        stretches = () if self.analysable is None else self.analysable.lead_stretches
        return any(start <= last and first <= end for start, end in stretches)

    def event_counts(self) -> dict[str, int]:
        """How many events of each kind, in the order a Holter reader looks for them
        (:data:`.events.READING_ORDER`: ventricular flutter first)."""
        counts: dict[str, int] = {}
        for event in self.analysis.events:
            counts[event.kind] = counts.get(event.kind, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (reading_rank(item[0]), item[0])))

    def hour_starts(self) -> np.ndarray:
        """Where each hour of the span starts (seconds from the recording's start): every
        hour from the span's start; where the recording says when it started, on the
        clock's hours (the first from the span's start to the next full hour, joined to
        the one after when under a minute), as a Holter report's hour by hour table is,
        read against a patient's diary."""
        minutes = self.analysis.heart_rate.minute_start_s
        start = float(minutes[0]) if len(minutes) else 0.0
        if self.started is None:
            return start + 3600.0 * np.arange(max(int(np.ceil(len(minutes) / 60)), 1))
        end = start + self.analysable.span_seconds
        # The clock's whole seconds, as its times are shown (RecordingStart.clock): a
        # start at 22:30:00.7 split at 22:59:59, read "23:59:59" for midnight.
        to_the_hour = -(math.floor(self.started.seconds_of_day) + round(start)) % 3600
        full = np.arange(round(start) + to_the_hour, end, 3600.0)
        return np.concatenate([[start], full[full >= start + 60]])

    def hourly(self) -> list[dict[str, Any]]:
        """Per hour of the span (:meth:`hour_starts`): its beats by kind, its pauses and
        its mean rate (60 over the mean of the NN intervals ending in it, as the span's
        mean rate is: with one hour, the two are the same; None under 10 s of them). The
        beats of a last hour cut short count in it."""
        analysis = self.analysis
        starts = self.hour_starts()
        hours = len(starts)

        def hour_of(seconds) -> np.ndarray:
            return np.clip(np.searchsorted(starts, seconds, side="right") - 1, 0, hours - 1)

        hour = hour_of(self.times_s)
        pauses = list(hour_of([event.start_s for event in analysis.events
                               if event.kind == "pause"]))
        intervals, ends, _ = nn_intervals(self.times_s, analysis.normal)
        mean_bpm = rates_in(intervals, hour_of(ends), hours)
        rows = []
        for index in range(hours):
            inside = hour == index
            begins = float(starts[index])
            rows.append({"hour": index, "start_s": round(begins, 2),
                         "start": format_time(begins, always_hours=True),
                         "time_of_day": self.time_of_day(begins),
                         "beats": int(inside.sum()),
                         "ventricular": int((analysis.kinds[inside] == VENTRICULAR).sum()),
                         "supraventricular": int((analysis.kinds[inside] ==
                                                  SUPRAVENTRICULAR).sum()),
                         "pauses": pauses.count(index),
                         "mean_bpm": _number(float(mean_bpm[index]), 1)})
        return rows

    def as_json(self) -> dict[str, Any]:
        """The rhythm part of the run report (``inputs[].rhythm``)."""
        analysis = self.analysis
        rate, fibrillation = analysis.heart_rate, analysis.atrial_fibrillation
        listed = self.families[:LISTED_FAMILIES]
        return {
            "normal_beats": int(analysis.normal.sum()),
            "ectopic_shape_beats": int(analysis.families.ectopic.sum()),
            "heart_rate": {
                "nn_intervals": rate.nn_count,
                "sinus_nn_intervals": rate.sinus_nn_count,
                **_minute_rates(rate.nn),
                "sdnn_ms": _number(rate.sdnn_ms),
                "rmssd_ms": _number(rate.rmssd_ms),
                "pnn50": _number(rate.pnn50),
                "first_minute_s": float(rate.minute_start_s[0]) if len(rate.minute_start_s)
                else 0.0,
                "every_beat": _minute_rates(rate.every_beat),
            },
            "atrial_fibrillation": {
                "seconds": round(fibrillation.seconds, 1),
                "burden": round(self.burden, 4),
                "episodes": [{"start_s": round(item.start_s, 2), "end_s": round(item.end_s, 2),
                              **dict(zip(("start", "end", "duration"),
                                         clock_span(item.start_s, item.end_s))),
                              "time_of_day": self.time_of_day(item.start_s)}
                             for item in fibrillation.episodes],
            },
            "families": [{"family": item.family, "beats": item.beats,
                          "share": round(item.share, 4), "mean_score": _number(item.mean_score),
                          "anomalies": item.anomalies, "kind": item.kind,
                          "representative_s": round(float(self.times_s[item.representative]), 3),
                          "representative_at": format_time(self.times_s[item.representative])}
                         for item in listed],
            "other_families": {"families": len(self.families) - len(listed),
                               "beats": sum(item.beats for item in self.families[len(listed):])},
            "beats": self.beat_counts(),
            "event_counts": self.event_counts(),
            "events": [{"kind": event.kind, "start_s": round(event.start_s, 2),
                        "end_s": round(event.end_s, 2), "start": format_time(event.start_s),
                        "time_of_day": self.time_of_day(event.start_s),
                        "duration_s": round(event.duration_s, 2), "beats": event.beats,
                        "rate_bpm": _number(rounded_rate(event, 1), 1),
                        "near_unreadable": self.near_unreadable(event)}
                       for event in analysis.events[:LISTED_EVENTS]],
            "hourly": self.hourly(),
        }


def recording_rhythm(path: str | os.PathLike, segment: "SegmentOptions", *,
                     peaks: np.ndarray, scores: np.ndarray, flagged: np.ndarray,
                     analysable_s: float | None) -> RecordingRhythm:
    """The rhythm of a scored recording.

    Parameters
    ----------
    path : str or PathLike
        The recording.
    segment : SegmentOptions
        How scoring found its beats (lead, span, rate); they are read again with
        :data:`.analysis.ANALYSIS_WINDOW`.
    peaks, scores, flagged : ndarray, shape (n,)
        The scored beats' R peaks (samples, increasing), scores and flags; matched to the
        beats read again by sample.
    analysable_s : float or None
        The recording's analysable seconds, of which the AF burden is a share (None: as
        its reading again finds them).

    Returns
    -------
    RecordingRhythm
    """
    beats, span_s, analysable = read_rhythm_beats(path, segment)
    analysis = analyse_beats(beats, span_s=span_s, flutter=analysable.flutter)
    beat_scores = np.full(len(beats.sample), np.nan)
    beat_flags = np.zeros(len(beats.sample), bool)
    if len(peaks):
        where = np.clip(np.searchsorted(peaks, beats.sample), 0, len(peaks) - 1)
        same = peaks[where] == beats.sample
        beat_scores[same] = np.asarray(scores, np.float64)[where[same]]
        beat_flags[same] = np.asarray(flagged, bool)[where[same]]
    if analysable_s is None:
        analysable_s = analysable.seconds
    return RecordingRhythm(analysis, family_summaries(analysis, beat_scores, beat_flags),
                           analysable_s, beats.time_s, beats.sample, analysable)


def family_summaries(analysis: RhythmAnalysis, scores: np.ndarray,
                     flagged: np.ndarray) -> tuple[FamilySummary, ...]:
    """Each family's counts and scores, largest family first, from each beat's score
    (NaN: not scored) and flag, shape ``(n,)``."""
    families = analysis.families
    assigned = families.family >= 0
    total = max(int(assigned.sum()), 1)
    summaries = []
    for index, count in enumerate(families.counts):
        members = families.family == index
        known = scores[members][np.isfinite(scores[members])]
        summaries.append(FamilySummary(
            family=index, beats=int(count), share=float(count) / total,
            mean_score=float(known.mean()) if len(known) else float("nan"),
            anomalies=int(flagged[members].sum()), dominant=index == families.dominant,
            normal_shape=bool(families.normal_shape[index]),
            representative=int(families.representative[index])))
    return tuple(summaries)


def _minute_rates(rates) -> dict[str, Any]:
    """A :class:`.heart_rate.MinuteRates` in the run report."""
    return {"mean_bpm": _number(rates.mean_bpm), "minimum_bpm": _number(rates.minimum_bpm),
            "minimum_at": _clock(rates.minimum_at_s), "maximum_bpm": _number(rates.maximum_bpm),
            "maximum_at": _clock(rates.maximum_at_s),
            "per_minute_bpm": [_number(value) for value in rates.per_minute_bpm]}


def _number(value: float, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def _clock(seconds: float) -> str | None:
    return None if not math.isfinite(seconds) else format_time(seconds)
