"""Rhythm events a Holter reader lists, from each beat's time and kind: ventricular and
supraventricular ectopic beats, couplets, runs, bigeminy and trigeminy, pauses, and
bradycardia and tachycardia.

A beat's kind comes from its family and its timing (:mod:`.analysis`): **ventricular**
when its family is of ectopic shape (in atrial fibrillation, or in a run of
:data:`.analysis.NARROW_RUN` or more, only when also :data:`.analysis.WIDER_IN_AF` times
as wide as the dominant family), **supraventricular**
when it is of normal shape but premature outside atrial fibrillation, **normal**
otherwise, unknown when it could not be read (an unknown beat breaks every pattern).
Then, with the limits of :class:`EventLimits`:

- a **couplet** is two ectopic beats of a kind in a row, a **run** three or more (its
  rate from the intervals between its beats, as its strip shows them, not the coupling
  interval into its first: a ventricular run at ``tachycardia_bpm`` or faster is
  *ventricular tachycardia*, a supraventricular one *supraventricular tachycardia*);
- **bigeminy** is a ventricular beat after every normal one, at least ``pattern_cycles``
  times in a row (N V N V N V), **trigeminy** one after every two (N N V N N V N N V);
- a **pause** is an RR interval of ``pause_s`` or more between two readable beats;
- **ventricular flutter or fibrillation** is found in the signal, not the beats (a stretch
  of it, :func:`anomaly.recordings.quality.flutter_waves`, is an event of its own, its
  beats set aside: :func:`rhythm_events`'s ``flutter``);
- **bradycardia** and **tachycardia** are stretches whose rate over the last
  ``rate_beats`` intervals, from the NN intervals among them (between two normal beats,
  as the heart rate counts them: :func:`.heart_rate.nn_pairs`; :data:`MIN_NN_INTERVALS`
  at least), stays below ``bradycardia_bpm`` or at or above ``tachycardia_bpm``, joined
  when at most ``join_gap_s`` apart, lasting at least ``rate_min_s`` (a few fast beats
  are a run, not a tachycardia); their rate is the slowest (fastest) over such a window
  in them. An ectopic beat's intervals are not the rhythm's rate: a ventricular run is
  its own event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..recordings.quality import FLUTTER_REASON, PAUSE_SECONDS
from ..recordings.signals import runs
from .episodes import Episode, join_close
from .heart_rate import nn_pairs

#: A beat's kind: normal, supraventricular or ventricular ectopic, or unknown.
NORMAL, SUPRAVENTRICULAR, VENTRICULAR, UNKNOWN = "N", "S", "V", "?"


@dataclass(frozen=True)
class EventLimits:
    """The limits of the events (see the module's docstring)."""

    pause_s: float = PAUSE_SECONDS
    bradycardia_bpm: float = 50.0
    tachycardia_bpm: float = 100.0
    rate_beats: int = 8
    rate_min_s: float = 30.0
    join_gap_s: float = 10.0
    pattern_cycles: int = 3


@dataclass(frozen=True)
class Event(Episode):
    """An event: its kind and times (as an :class:`.episodes.Episode`), the beats it holds
    and its rate (beats per minute over its intervals, a bradycardia's and a
    tachycardia's the slowest and fastest of their own; NaN where it has no interval)."""

    beats: int = 0
    rate_bpm: float = math.nan


#: The kinds of event in the order a Holter reader looks for them, each with what makes one
#: event of the kind more telling than another: the longest (in time), the slowest or
#: the fastest (its rate; an event of unknown rate comes after those with one).
READING_ORDER = {
    FLUTTER_REASON: "longest",
    "ventricular tachycardia": "longest",
    "pause": "longest",
    "supraventricular tachycardia": "longest",
    "ventricular run": "longest",
    "supraventricular run": "longest",
    "bradycardia": "slowest",
    "tachycardia": "fastest",
    "ventricular bigeminy": "longest",
    "ventricular trigeminy": "longest",
    "ventricular couplet": "fastest",
    "supraventricular couplet": "fastest",
}


def reading_rank(kind: str) -> int:
    """A kind's place in :data:`READING_ORDER` (an unknown kind after all)."""
    kinds = list(READING_ORDER)
    return kinds.index(kind) if kind in kinds else len(kinds)


def most_telling_first(events: Iterable[Event]) -> list[Event]:
    """``events`` by kind in :data:`READING_ORDER`, and within a kind the most telling
    first (the longest, slowest or fastest; ties: the earliest)."""

    def key(event: Event) -> tuple:
        known = math.isfinite(event.rate_bpm)
        telling = {"longest": (0, -event.duration_s),
                   "slowest": (0, event.rate_bpm) if known else (1, 0.0),
                   "fastest": (0, -event.rate_bpm) if known else (1, 0.0),
                   }[READING_ORDER.get(event.kind, "longest")]
        return reading_rank(event.kind), *telling, event.start_s

    return sorted(events, key=key)


def most_telling(events: Iterable[Event], per_kind: int) -> list[Event]:
    """The ``per_kind`` most telling events of each kind, in :func:`most_telling_first`'s
    order."""
    shown: dict[str, int] = {}
    chosen = []
    for event in most_telling_first(events):
        shown[event.kind] = shown.get(event.kind, 0) + 1
        if shown[event.kind] <= per_kind:
            chosen.append(event)
    return chosen


def telling_words() -> str:
    """What 'most telling' means, from :data:`READING_ORDER`: ``the longest; the slowest
    bradycardia; the fastest tachycardia, ventricular couplet, ...``."""
    words = ["the longest"]
    for measure in ("slowest", "fastest"):
        kinds = [kind for kind, how in READING_ORDER.items() if how == measure]
        if kinds:
            words.append(f"the {measure} {', '.join(kinds)}")
    return "; ".join(words)


def beat_kinds(ventricular, premature, readable, in_af) -> np.ndarray:
    """Each beat's kind (:data:`VENTRICULAR`, :data:`SUPRAVENTRICULAR`, :data:`NORMAL` or
    :data:`UNKNOWN`) from per-beat flags: ventricular (of ectopic shape, see
    :mod:`.analysis`), premature, readable, in AF."""
    ventricular, premature = np.asarray(ventricular, bool), np.asarray(premature, bool)
    readable, in_af = np.asarray(readable, bool), np.asarray(in_af, bool)
    kinds = np.full(len(ventricular), NORMAL, dtype="<U1")
    kinds[premature & ~in_af] = SUPRAVENTRICULAR
    kinds[ventricular] = VENTRICULAR
    kinds[~readable] = UNKNOWN
    return kinds


#: The event of ventricular flutter or fibrillation, found in the signal, not the beats
#: (:func:`anomaly.recordings.quality.flutter_waves`): its beats are set aside.
FLUTTER = FLUTTER_REASON


def rhythm_events(times_s, kinds, limits: EventLimits = EventLimits(),
                  flutter: Iterable[tuple[float, float]] = ()) -> list[Event]:
    """The events of beats at ``times_s`` (seconds, increasing) of ``kinds`` (from
    :func:`beat_kinds`), and of the stretches of ventricular ``flutter`` or fibrillation
    (from and to, seconds), in time order."""
    times = np.asarray(times_s, dtype=np.float64)
    kinds = np.asarray(kinds)
    if times.shape != kinds.shape:
        raise ValueError(f"expected one kind per beat ({len(times)} beats), got {len(kinds)}")
    events = (_ectopic_runs(times, kinds, limits) + _patterns(times, kinds, limits)
              + _pauses(times, kinds, limits) + _rates(times, kinds, limits)
              + [Event(FLUTTER, float(start), float(end)) for start, end in flutter])
    return sorted(events, key=lambda event: (event.start_s, event.end_s, event.kind))


def rounded_rate(event: Event, digits: int = 0) -> float:
    """An event's rate to ``digits`` decimals (NaN when unknown): a bradycardia's rounded
    down, so that one below 50 bpm never reads 50."""
    scale = 10.0 ** digits
    if event.kind == "bradycardia":
        return math.floor(event.rate_bpm * scale) / scale if math.isfinite(event.rate_bpm) \
            else math.nan
    return round(event.rate_bpm, digits)


def shown_rate(event: Event) -> str:
    """An event's rate as a report shows it, in whole beats per minute
    (:func:`rounded_rate`; '' for none, and for a pause)."""
    if event.kind == "pause" or not math.isfinite(event.rate_bpm):
        return ""
    return f"{rounded_rate(event):.0f}"


def rate_words(event: Event) -> str:
    """An event's rate in a caption's words: ``at 150 bpm``, a bradycardia's ``down to 44
    bpm`` and a tachycardia's ``up to 132 bpm`` (their slowest and fastest: see
    :class:`Event`); '' where :func:`shown_rate` shows none."""
    rate = shown_rate(event)
    return f"{_RATE_WORDS.get(event.kind, 'at')} {rate} bpm" if rate else ""


#: How a caption says the rate of an event whose rate is its slowest or fastest.
_RATE_WORDS = {"bradycardia": "down to", "tachycardia": "up to"}


def _rate(times: np.ndarray) -> float:
    """Beats per minute over the intervals between ``times`` (NaN for fewer than two)."""
    return 60.0 * (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else math.nan


def _ectopic_runs(times, kinds, limits) -> list[Event]:
    found = []
    for kind, name, fast in ((VENTRICULAR, "ventricular", "ventricular tachycardia"),
                             (SUPRAVENTRICULAR, "supraventricular",
                              "supraventricular tachycardia")):
        for first, stop in runs(kinds == kind):
            count = stop - first
            if count < 2:
                continue
            rate = _rate(times[first:stop])
            label = (f"{name} couplet" if count == 2 else
                     fast if rate >= limits.tachycardia_bpm else f"{name} run")
            found.append(Event(label, float(times[first]), float(times[stop - 1]), count, rate))
    return found


#: The fewest NN intervals among a rate window's ``rate_beats`` intervals that give it a
#: rate: a trigeminy has one in three (asked for half, a tachycardia vanished wherever a
#: trigeminy was), a bigeminy none (its sinus rate is not known).
MIN_NN_INTERVALS = 2

#: The events that are a pattern of ventricular and normal beats: a ventricular beat every
#: so many beats.
PATTERNS = {"ventricular bigeminy": 2, "ventricular trigeminy": 3}


def _patterns(times, kinds, limits) -> list[Event]:
    """Bigeminy (V every 2nd beat) and trigeminy (every 3rd), at least ``pattern_cycles``
    cycles: the V beats of a chain each with exactly the normal beats of the pattern
    before it."""
    found = []
    for name, period in PATTERNS.items():
        ventricular = np.flatnonzero(kinds == VENTRICULAR)
        if len(ventricular) < limits.pattern_cycles:
            continue
        # A V beat continues the chain of the one ``period`` beats before it when the
        # beats between are normal.
        between = np.array([np.all(kinds[max(index - period + 1, 0):index] == NORMAL)
                            and index >= period and kinds[index - period] == VENTRICULAR
                            for index in ventricular])
        for first, stop in runs(between):
            chain = ventricular[first - 1:stop]  # the chain's first V beat starts it
            if len(chain) >= limits.pattern_cycles:
                # The normal beats before its first V beat (none before the first beat).
                start = max(chain[0] - (period - 1), 0)
                found.append(Event(name, float(times[start]), float(times[chain[-1]]),
                                   int(chain[-1] - start + 1), _rate(times[start:chain[-1] + 1])))
    return found


def _pauses(times, kinds, limits) -> list[Event]:
    readable = kinds != UNKNOWN
    long = (np.diff(times) >= limits.pause_s) & readable[:-1] & readable[1:]
    return [Event("pause", float(times[index]), float(times[index + 1]), 2,
                  _rate(times[index:index + 2])) for index in np.flatnonzero(long)]


def _rates(times, kinds, limits) -> list[Event]:
    """Stretches of at least ``rate_beats`` beats below or above the limits, by the rate
    of their normal-to-normal intervals."""
    width = limits.rate_beats
    if len(times) <= width:
        return []
    # The rate at each beat over the ``width`` intervals before it, from those between
    # two normal beats (MIN_NN_INTERVALS at least): an ectopic beat's early interval and
    # its pause are not the rhythm's (a ventricular tachycardia inside a tachycardia was
    # read as its rate, MIT-BIH 203; PVC couplets made a tachycardia of 233's 30 minutes
    # whose normal-to-normal rate was under 100 most of the time). Unreadable beats inside
    # the window give no rate there.
    normal = nn_pairs(times, kinds == NORMAL)
    count = np.convolve(normal.astype(float), np.ones(width), "valid")
    seconds = np.convolve(np.where(normal, np.diff(times), 0.0), np.ones(width), "valid")
    enough = count >= MIN_NN_INTERVALS
    rate = np.full(len(count), np.nan)
    rate[enough] = 60.0 * count[enough] / seconds[enough]
    unknown = np.convolve((kinds == UNKNOWN).astype(int), np.ones(width + 1, int), "valid")
    known = (unknown == 0) & enough
    found = []
    for name, outside, extreme in (("bradycardia", rate < limits.bradycardia_bpm, np.min),
                                   ("tachycardia", rate >= limits.tachycardia_bpm, np.max)):
        # The rate at k is of beats k..k + width: a run of them spans those beats.
        spans = [(first, stop - 1 + width) for first, stop in runs(outside & known)]
        for start, end in join_close(spans, times, limits.join_gap_s):
            if times[end] - times[start] >= limits.rate_min_s:
                # Its rate: the slowest (fastest) of its own, not the mean over the gaps
                # joined, which read a tachycardia at 97 bpm.
                inside = (outside & known)[start:end - width + 1]
                found.append(Event(name, float(times[start]), float(times[end]),
                                   int(end - start + 1),
                                   float(extreme(rate[start:end - width + 1][inside]))))
    return found
